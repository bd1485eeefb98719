"""The SDK's way to the services: one `Backend` protocol, an embedded and an HTTP implementation, the
explicit `Client`, and the fluent run API that `import loopml` exposes.

Interfaces layer: may import services and the domain. Keep module-level imports light: `import loopml`
must not pull in pandas, SQLAlchemy or FastAPI (backends are imported when first used).
"""

from loopml.client.backend import Backend
from loopml.client.client import Client

__all__ = ["Backend", "Client"]
