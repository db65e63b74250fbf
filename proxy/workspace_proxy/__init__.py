"""The workspace proxy: the one way from the tools' front door to a student's own workspace.

The load balancer signs the student in (Cognito) and passes who they are in ``x-amzn-oidc-data``,
a JWT it signs with ES256; ``identity`` verifies it against the region's ALB public-key endpoint;
``targets`` finds that student's running workspace task from the user id alone; ``server`` forwards
the request (and code-server's WebSocket) there. No part of a request chooses the workspace.
"""
