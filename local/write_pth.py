"""Put the repository root and the common layer on the virtualenv's import path.

In AWS the layer lives at /opt/python and each function's package sits at the root of its
asset; locally a .pth file gives every entry point (tests, local stack, bench, CDK) the same view.
"""

import site
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
target = Path(site.getsitepackages()[0]) / "apranova-dev.pth"
target.write_text(f"{ROOT}\n{ROOT / 'layers' / 'common' / 'python'}\n")
print(f"wrote {target.name}")
