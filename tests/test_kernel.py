"""kernel.started and the papermill engine that runs a notebook in it, with real kernels."""

import json
import time
from pathlib import Path

import nbformat
import papermill
import pytest
from jupyter_core.utils import run_sync
from papermill.exceptions import PapermillExecutionError

from datastory import kernel


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nb.metadata["kernelspec"] = {"name": kernel.KERNEL_NAME, "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _run(km, nb, out, cwd):
    papermill.execute_notebook(str(nb), str(out), cwd=str(cwd), kernel_name=kernel.KERNEL_NAME,
                               engine_name=kernel.ENGINE, km=km, progress_bar=False)


def _exit_status(process, within=20.0):
    """The process's exit status once it has exited (None if it still runs after `within` seconds)."""
    deadline = time.monotonic() + within
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return process.poll()


def test_the_notebook_runs_in_the_started_kernel_in_its_folder(tmp_path):
    work = tmp_path / "project"
    work.mkdir()
    nb = _notebook(tmp_path / "in.ipynb", "import os\nopen('seen.txt', 'w').write(f'{os.getcwd()} {os.getpid()}')")
    with kernel.started(work) as km:
        process = km.provisioner.process  # the manager lets go of it at shutdown
        _run(km, nb, tmp_path / "out.ipynb", work)
    folder, pid = (work / "seen.txt").read_text().rsplit(" ", 1)
    assert folder == str(work) and int(pid) == process.pid  # no second kernel was started
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert executed.metadata["language_info"]["name"] == "python"


def test_the_kernel_runs_without_the_debugger(tmp_path):
    nb = _notebook(tmp_path / "in.ipynb", "import sys\nimport ipykernel.debugger as d\n"
                   "open('debugger.txt', 'w').write(f\"{sys.modules.get('debugpy')} {d._is_debugpy_available}\")")
    with kernel.started(tmp_path) as km:
        assert km.kernel_spec.argv[1:3] == ["-c", kernel.LAUNCH]
        _run(km, nb, tmp_path / "out.ipynb", tmp_path)
    assert (tmp_path / "debugger.txt").read_text() == "None False"


def test_a_kernel_spec_that_is_not_ipykernels_launcher_is_left_as_it_is(tmp_path, monkeypatch):
    spec_dir = tmp_path / "kernels" / "other"
    spec_dir.mkdir(parents=True)
    argv = ["python", "-m", "other_kernel", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "o", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    assert kernel.manager_class()(kernel_name="other").kernel_spec.argv == argv


def test_the_client_is_ready_once_the_kernel_answers_and_then_runs_code(tmp_path):
    """Its wait returns without draining the kernel's first status messages; a request then gets its reply and
    output as before."""
    with kernel.started(tmp_path) as km:
        kc = km.client()
        assert type(kc).__name__ == "ReadyKernelClient"
        kc.start_channels()
        try:
            run_sync(kc.wait_for_ready)(timeout=60)
            seen = []
            reply = run_sync(kc.execute_interactive)("print(6 * 7)", timeout=60,
                                                     output_hook=lambda msg: seen.append(msg))
        finally:
            kc.stop_channels()
    assert reply["content"]["status"] == "ok"
    assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["42\n"]


def test_after_a_run_the_kernel_is_asked_to_stop_and_exits_by_itself(tmp_path):
    nb = _notebook(tmp_path / "in.ipynb", "import pandas\nx = 1")
    with kernel.started(tmp_path) as km:
        process = km.provisioner.process  # the manager lets go of it at shutdown
        _run(km, nb, tmp_path / "out.ipynb", tmp_path)
    assert km.detach
    assert _exit_status(process) == 0  # its own clean exit, not a kill (-9) or a terminate (-15)


def test_a_cell_error_leaves_the_kernel_to_exit_by_itself(tmp_path):
    nb = _notebook(tmp_path / "in.ipynb", "raise ValueError('bad value')")
    with pytest.raises(PapermillExecutionError, match="bad value"), kernel.started(tmp_path) as km:
        process = km.provisioner.process  # the manager lets go of it at shutdown
        _run(km, nb, tmp_path / "out.ipynb", tmp_path)
    assert km.detach
    assert _exit_status(process) == 0


def test_any_other_error_shuts_the_kernel_down_before_it_propagates(tmp_path):
    nb = _notebook(tmp_path / "in.ipynb", "x = 1")
    with pytest.raises(RuntimeError, match="stop here"), kernel.started(tmp_path) as km:
        process = km.provisioner.process  # the manager lets go of it at shutdown
        _run(km, nb, tmp_path / "out.ipynb", tmp_path)
        raise RuntimeError("stop here")
    assert not km.detach
    assert process.poll() is not None  # already gone when the error reaches the caller


def test_only_papermills_cell_error_counts_as_one():
    assert not kernel.cell_error(RuntimeError("x"))
    assert not kernel.cell_error(KeyboardInterrupt())


def test_a_missing_folder_fails_before_any_kernel_runs(tmp_path):
    with pytest.raises(OSError), kernel.started(tmp_path / "missing"):
        pytest.fail("the block must not run")


def test_the_kernel_imports_the_given_lines_before_the_first_cell(tmp_path):
    """A failing line is skipped (its cell reports it), the next still runs; the notebook does not see the list.
    The collector is on again for the cells, with what the start and the imports made frozen."""
    nb = _notebook(tmp_path / "in.ipynb", "import gc, os, sys\n"
                   f"open('seen.txt', 'w').write(f\"{{'colorsys' in sys.modules}} {{os.environ.get('{kernel.WARM_ENV}')}} \""
                   "f\"{gc.isenabled()} {gc.get_freeze_count() > 10_000}\")")
    with kernel.started(tmp_path, ["import no_such_module_here", "import colorsys"]) as km:
        _run(km, nb, tmp_path / "out.ipynb", tmp_path)
    assert (tmp_path / "seen.txt").read_text() == "True None True True"


def test_without_imports_the_kernel_loads_nothing_more(tmp_path):
    nb = _notebook(tmp_path / "in.ipynb", "import sys\nopen('seen.txt', 'w').write(str('colorsys' in sys.modules))")
    with kernel.started(tmp_path) as km:
        _run(km, nb, tmp_path / "out.ipynb", tmp_path)
    assert (tmp_path / "seen.txt").read_text() == "False"


def test_notebook_imports_are_the_top_level_import_lines_of_code_cells():
    nb = {"cells": [
        {"cell_type": "markdown", "source": "import not_this"},
        {"cell_type": "code", "source": ["from datastory import config, pack\n", "x = 1\n", "import a.b as c\n"]},
        {"cell_type": "code", "source": "%matplotlib inline\nimport skipped_with_its_magic"},
        {"cell_type": "code", "source": "def f():\n    import not_at_top_level\nimport pandas as pd"},
    ]}
    assert kernel.notebook_imports(nb) == ["from datastory import config, pack", "import a.b as c",
                                           "import pandas as pd"]
    assert kernel.notebook_imports({"cells": []}) == []


_STAGE = """
import sys
sys.path.insert(0, {tests!r})
from test_kernel import _notebook, _run
from pathlib import Path
from datastory import kernel
work = Path({work!r})
nb = _notebook(work / "in.ipynb", {cell!r})
with kernel.started(work) as km:
    print(km.provisioner.process.pid, flush=True)
    {body}
"""


def _stage_process(tmp_path, cell: str, body: str) -> int:
    """Run a stage-like process (an interpreter of its own) that starts a kernel, runs `body` and exits at once;
    the kernel's pid."""
    import subprocess
    import sys
    from pathlib import Path

    code = _STAGE.format(tests=str(Path(__file__).parent), work=str(tmp_path), cell=cell, body=body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return int(done.stdout.split()[0])


def _gone(pid: int, within: float) -> bool:
    import os

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_kernel_asked_to_stop_runs_its_clean_up_after_the_stage_has_gone(tmp_path):
    """The stage does not wait for its kernel; the kernel's exit handlers still run, even when they take longer than
    ipykernel's parent poll (which ended the kernel with os._exit a second after the stage had gone)."""
    cell = ("import atexit, time\n"
            "def done():\n    time.sleep(2.5)\n    open('cleaned.txt', 'w').write('yes')\n"
            "atexit.register(done)")
    pid = _stage_process(tmp_path, cell, "_run(km, nb, work / 'out.ipynb', work)")
    assert _gone(pid, 60)
    assert (tmp_path / "cleaned.txt").read_text() == "yes"


def test_a_kernel_with_a_forkserver_removes_multiprocessings_temporary_folder(tmp_path):
    """A LocalCluster's kernel starts a forkserver (and its resource tracker): asked to stop, the kernel stops them,
    and multiprocessing's temporary folder (the forkserver's socket) goes with the kernel's own exit."""
    cell = ("import multiprocessing as mp, os\n"
            "from multiprocessing import util\n"
            "p = mp.get_context('forkserver').Process(target=os.getpid)\np.start()\np.join()\n"
            "open('tmpdir.txt', 'w').write(util.get_temp_dir())")
    pid = _stage_process(tmp_path, cell, "_run(km, nb, work / 'out.ipynb', work)")
    folder = Path((tmp_path / "tmpdir.txt").read_text())
    assert _gone(pid, 60)
    assert folder.name.startswith("pymp-") and not folder.exists()


def test_a_kernel_whose_stage_died_without_asking_it_to_stop_ends(tmp_path):
    """A stage killed outright (os._exit: no shutdown request, even before the kernel was up) leaves no kernel."""
    pid = _stage_process(tmp_path, "x = 1", "import os; os._exit(0)")
    assert _gone(pid, 20)
