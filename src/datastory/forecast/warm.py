"""Imported once by the forecast engine's forkserver (engine.PRELOAD), so every LocalCluster worker forks with it:

- Prophet and cmdstanpy loaded, their chatter silenced: no worker pays for that import again;
- the worker's "Failed to communicate with scheduler during heartbeat" traceback dropped. In a LocalCluster the
  scheduler lives in the process that started the workers, so a failed heartbeat only happens in the race between
  a heartbeat and that process closing the cluster (a known distributed race): the traceback was noise at the end
  of a successful run. A worker that really loses its scheduler is still closed by its nanny.
"""

from .models import _quiet_prophet, drop_messages

_quiet_prophet()
drop_messages("distributed.worker", "Failed to communicate with scheduler during heartbeat")
