"""The Jupyter kernel a stage notebook runs in: started early, let go without waiting for it to exit.

A kernel takes about half a second to start (a Python process importing IPython) and, once the notebook has
loaded pandas and matplotlib, about a third of a second to exit. Neither is the stage's work, and a cold run of
the sample starts nine of them. So:
- `started` launches the kernel as soon as the stage's params are valid, before this process imports papermill
  and reads the notebook: the kernel boots on the other core meanwhile;
- papermill runs the notebook in that kernel (`ENGINE`, papermill's own engine told to use it);
- after a notebook that ran to its end, or stopped on a cell's error, the kernel is asked to shut down and left
  to finish on its own, in parallel with what this process still does (normalising the record, the report's
  HTML and PDF). Its exit still runs its own clean-up (temporary files, a Dask cluster left open), even once this
  process is gone (`ParentWatch`).
- Any other way out (an interrupt, a kernel that died or never started) shuts it down the old way: asked, waited
  for up to 5 s, then killed.
- The kernel boots without the debugger a notebook stage never uses (`launch`: importing debugpy took about
  0.04 s of every start), imports what the notebook imports before it serves, and its client does not wait out
  0.2 s of silence once the kernel has answered (`ready_client_class`).
"""

from __future__ import annotations

import ast
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ENGINE = "datastory"
KERNEL_NAME = "python3"
# the kernel listens on loopback only; keep its start-up warnings off the terminal. (Its input history stays on:
# without it the kernel often took 10 s to exit, its control thread flushing output after the output thread had
# stopped.)
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]
# ipykernel_launcher's place: `launch` (below) in the kernel's process, the working folder off its import path first
WARM_ENV = "DATASTORY_KERNEL_IMPORTS"
LAUNCH = ("import sys\n"
          "if sys.path[0] == '':\n    del sys.path[0]\n"
          "from datastory.kernel import launch\n"
          "launch()")
LAUNCHER = ["-m", "ipykernel_launcher"]


def launch() -> None:
    """Run an ipykernel kernel in this process, as ipykernel_launcher does, with three differences.

    - debugpy is made unimportable first: ipykernel then runs without its debugger (a notebook stage has no front
      end to debug from), as it does where debugpy is not installed.
    - Once the kernel is set up and before it serves, it runs the import lines named in WARM_ENV (the notebook's
      own, see `started`): they take place while the stage's process still reads and fills the notebook. They run
      as a cell would, with IPython's builtins in place (pandas, for one, reads its display width from them at
      import), and their output is flushed before the first cell. A failing line is left for its cell to report.
      The cyclic garbage collector is off until then, and what the start and the imports made is frozen
      (gc.freeze): no collection walks the modules' objects again and again while they load, nor later in every
      cell (0.1 to 0.3 s of each stage). The few cycles the imports leave behind stay until the kernel exits.
    - ipykernel's watch on its parent process ends the kernel at once (os._exit) when the parent is gone, and the
      stage's process does not wait for a kernel it asked to shut down: that cut every kernel's exit short, so
      its clean-up never ran (cmdstanpy's and multiprocessing's temporary folders were left behind at each
      forecast run). `ParentWatch` ends a kernel whose parent is gone only when it was not asked to shut down, or
      is still not gone SHUTDOWN_GRACE_S later; and a kernel asked to shut down stops its multiprocessing helpers
      first (`stop_helpers`), which its shutdown would otherwise signal for seconds.
    """
    import gc
    import sys

    gc.disable()
    sys.modules["debugpy"] = None
    from ipykernel import kernelapp

    app = kernelapp.IPKernelApp.instance()
    app.initialize()
    shutdown = app.kernel.do_shutdown

    def do_shutdown(restart: bool) -> Any:   # asked to shut down (so noted first), then no helper process left
        reply = shutdown(restart)
        stop_helpers()
        return reply

    app.kernel.do_shutdown = do_shutdown
    if app.poller is not None and sys.platform != "win32":
        # the stage's process as it launched the kernel (JPY_PARENT_PID): it may be gone before this line runs
        app.poller = ParentWatch(int(app.parent_handle), lambda: bool(getattr(app.shell, "exit_now", False)))
    with app.shell.builtin_trap:
        for line in os.environ.pop(WARM_ENV, "").splitlines():
            with contextlib.suppress(Exception):   # its cell imports it again and reports the error
                exec(line, {})
    gc.freeze()
    gc.enable()
    sys.stdout.flush()
    sys.stderr.flush()
    app.start()


def stop_helpers() -> None:
    """Stop the multiprocessing helper processes this process started, if any, and wait for each: the forkserver a
    LocalCluster's workers fork from, and the resource tracker.

    The forkserver then exits through its own clean-up (cmdstanpy, which it imports, removes its temporary
    folder). And a kernel asked to shut down has no child left for ipykernel to signal: it sends its children
    SIGTERM, then SIGKILL, until none is left, and the resource tracker ignores SIGTERM, which took a forecast's
    kernel 15 s to exit. The multiprocessing API has no public call for either: `_stop` is what its own tests use;
    where it is missing, or fails, the process is left to ipykernel."""
    import sys

    for module, name in (("multiprocessing.forkserver", "_forkserver"),
                         ("multiprocessing.resource_tracker", "_resource_tracker")):
        helper = getattr(sys.modules.get(module), name, None)
        if helper is not None:
            with contextlib.suppress(Exception):
                helper._stop()


SHUTDOWN_GRACE_S = 30.0   # how long a kernel asked to shut down may take to exit once its parent is gone


class ParentWatch(threading.Thread):
    """ipykernel's parent poller (Unix), except that a kernel asked to shut down (`stopping()` true) may finish its
    exit, clean-up included, once its parent is gone (for up to SHUTDOWN_GRACE_S); any other kernel ends as soon as
    its parent is gone, as with ipykernel's (checked every `poll_s`)."""

    def __init__(self, parent: int, stopping: Callable[[], bool], poll_s: float = 1.0) -> None:
        super().__init__(daemon=True, name="datastory-parent-watch")
        self.parent, self.stopping, self.poll_s = parent, stopping, poll_s

    def run(self) -> None:
        while os.getppid() == self.parent:
            time.sleep(self.poll_s)
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while self.stopping() and time.monotonic() < deadline:
            time.sleep(self.poll_s / 10)
        os._exit(1)


def manager_class() -> type:
    """A kernel manager whose graceful shutdown does not interrupt the kernel first, and may leave the kernel to
    exit on its own.

    jupyter_client (8.x) sends SIGINT before every shutdown request, even a graceful one; the idle kernel
    catches it and logs "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel." to the terminal
    after every successful stage. Asked to shut down, the kernel stops on its own; a kernel that does
    not is still terminated, then killed, by `finish_shutdown`. Interrupting a running cell is unchanged.
    With `detach` set, `finish_shutdown` does not wait: the request is sent and the kernel exits by itself.
    """
    from jupyter_client import AsyncKernelManager

    class QuietShutdownKernelManager(AsyncKernelManager):
        detach = False

        @property
        def kernel_spec(self) -> Any:
            """The kernel spec, launched by `LAUNCH` where it runs ipykernel's own launcher (any other spec as is)."""
            from jupyter_client.kernelspec import KernelSpec

            spec = super().kernel_spec
            if spec is not None and spec.argv[1:3] == LAUNCHER:
                spec = KernelSpec(**{**spec.to_dict(), "argv": [spec.argv[0], "-c", LAUNCH, *spec.argv[3:]]})
                self._kernel_spec = spec
            return spec

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

        async def _async_finish_shutdown(self, *args: Any, **kwargs: Any) -> None:
            if self.detach:
                return
            await super()._async_finish_shutdown(*args, **kwargs)

    return QuietShutdownKernelManager


def ready_client_class() -> type:
    """A kernel client whose `wait_for_ready` returns once the kernel has answered on its shell and IOPub channels.

    jupyter_client's (8.x) then also drains IOPub until it has been silent for 0.2 s, on every start. What it
    drains are the kernel's status messages about that first request; papermill's client reads only the messages
    of the cells it sends, so the drain only made every stage wait.
    """
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient

    class ReadyKernelClient(AsyncKernelClient):
        async def wait_for_ready(self, timeout: float | None = None) -> None:  # AsyncKernelClient binds it by name
            deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
            while True:
                self.kernel_info()
                try:
                    msg = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    pass
                else:
                    if msg["msg_type"] == "kernel_info_reply":
                        try:   # IOPub is connected once the kernel's status about that request comes through
                            await self.iopub_channel.get_msg(timeout=0.2)
                        except Empty:
                            pass
                        else:
                            self._handle_kernel_info_reply(msg)
                            return
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    return ReadyKernelClient


@contextlib.contextmanager
def started(cwd: str | Path, imports: list[str] | tuple[str, ...] = ()) -> Iterator[Any]:
    """A kernel launched now with `cwd` as working directory; pass it to papermill as `km` with `engine_name=ENGINE`.

    `imports`: import statements (one line each, see `notebook_imports`) the kernel runs before it serves.

    On a normal exit from the block the kernel is asked to shut down and not waited for; on an exception other
    than a notebook's own error it is shut down and waited for (killed if it does not stop).
    """
    from jupyter_core.utils import run_sync

    km = manager_class()(kernel_name=KERNEL_NAME, client_factory=ready_client_class())
    env = {"env": {**os.environ, WARM_ENV: "\n".join(imports)}} if imports else {}
    run_sync(km.start_kernel)(cwd=str(cwd), extra_arguments=KERNEL_ARGS, **env)
    detach = True
    try:
        register_engine()  # imports papermill, while the kernel boots
        yield km
    except BaseException as exc:
        detach = cell_error(exc)  # a cell raised: the kernel itself is well and idle
        raise
    finally:
        km.detach = detach
        with contextlib.suppress(Exception):
            if run_sync(km.is_alive)():
                run_sync(km.shutdown_kernel)(now=False)
            else:
                run_sync(km.cleanup_resources)()


def cell_error(exc: BaseException) -> bool:
    """Whether `exc` is papermill's report of a cell that raised (papermill is imported by then)."""
    import sys

    module = sys.modules.get("papermill.exceptions")
    return module is not None and isinstance(exc, module.PapermillExecutionError)


def register_engine() -> None:
    """Register `ENGINE` with papermill."""
    from papermill.engines import papermill_engines

    papermill_engines.register(ENGINE, _engine_class())


def _engine_class() -> type:
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    class StartedKernelEngine(NBClientEngine):
        """papermill's nbclient engine in the kernel passed as `km`, whose client it closes after the run
        (nbclient leaves the client open when it did not start the kernel itself)."""

        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(kwargs, timeout=execution_timeout, startup_timeout=start_timeout,
                                 kernel_name=kernel_name, log=logger, log_output=log_output,
                                 stdout_file=stdout_file, stderr_file=stderr_file)
            client = PapermillNotebookClient(nb_man, **final)
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()
                    client.kc = None

    return StartedKernelEngine


def notebook_imports(nb: dict[str, Any]) -> list[str]:
    """The import statements at the top level of a notebook's code cells (JSON as nbformat writes it), one line
    each, in order: what `started` has the kernel import ahead of the cells. Cells that are not plain Python
    (a magic, say) are skipped."""
    found: list[str] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        try:
            tree = ast.parse("".join(source) if isinstance(source, list) else source)
        except SyntaxError:
            continue
        found += [ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    return found
