"""Code shared by more than one ApraNova function (deployed as the common Lambda layer)."""
