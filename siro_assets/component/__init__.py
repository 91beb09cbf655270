"""`SiroComponent`, the Dagster component (`dg scaffold defs siro_assets.SiroComponent <name>`).

May import `siro_assets.pipeline` (the factories it assembles); imports the simulator only
when an instance asks for it.
"""

from .component import SiroComponent

__all__ = ["SiroComponent"]
