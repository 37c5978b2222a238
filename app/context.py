"""What every tab of the launcher shares: settings, the job runner, the UI language and the workflow fields."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.i18n import I18n
from app.processes import ProcessManager
from GPT_SoVITS.config import WebUISettings
from GPT_SoVITS.paths import REPO_ROOT, ExperimentPaths, PretrainedPaths

#: The workflow fields that flow between steps, with their defaults relative to the settings.
WORKFLOW_FIELDS = (
    "exp_name",  # experiment name (tab 1 header); everything of an experiment goes to <exp_root>/<exp_name>
    "slicer_input",  # 0b input file or folder
    "slicer_output",  # 0b output folder
    "denoise_input",  # 0bb input folder (= slicer output)
    "denoise_output",  # 0bb output folder
    "asr_input",  # 0c input folder (= slicer or denoise output)
    "asr_output",  # 0c output folder
    "list_path",  # the .list label file: ASR output → label fixer (0d) and 1A
    "audio_dir",  # 1A audio folder (= slicer / denoise output)
)


class Workflow:
    """Server-side values of the shared fields; ``version`` grows whenever a job pushes new values."""

    def __init__(self, values: dict[str, str]):
        unknown = set(values) - set(WORKFLOW_FIELDS)
        if unknown:
            raise KeyError(f"unknown workflow field(s): {sorted(unknown)}")
        self._values = {name: values.get(name, "") for name in WORKFLOW_FIELDS}
        self._lock = threading.Lock()
        self.version = 0

    def get(self, name: str) -> str:
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._values)

    def set(self, name: str, value: str) -> None:
        """A user edit: stored, without asking other views to refresh (the edit handler updates siblings)."""
        if name not in self._values:
            raise KeyError(name)
        with self._lock:
            self._values[name] = value

    def push(self, **values: str) -> None:
        """A job result flowing into later steps: stored, and every view refreshes on its next tick."""
        with self._lock:
            for name, value in values.items():
                if name not in self._values:
                    raise KeyError(name)
                self._values[name] = value
            self.version += 1


@dataclass
class AppContext:
    settings: WebUISettings
    processes: ProcessManager
    i18n: I18n
    workflow: Workflow
    root: Path = REPO_ROOT
    components: dict[str, list[Any]] = field(default_factory=dict)  # workflow field → Gradio components

    @classmethod
    def create(cls, settings: WebUISettings, language: str | None = None, root: Path = REPO_ROOT) -> AppContext:
        out = root / settings.output_root
        workflow = Workflow({
            "exp_name": settings.default_exp_name,
            "slicer_output": str(out / "slicer_opt"),
            "denoise_input": str(out / "slicer_opt"),
            "denoise_output": str(out / "denoise_opt"),
            "asr_input": str(out / "slicer_opt"),
            "asr_output": str(out / "asr_opt"),
        })
        # children always run from the code checkout; every path they get is made absolute by ctx.path()
        processes = ProcessManager(root / settings.exp_root / "_jobs", cwd=REPO_ROOT)
        return cls(settings, processes, I18n(language), workflow, root)

    def path(self, value: str | Path) -> Path:
        """A user-entered path: absolute as given, else relative to the repository root."""
        p = Path(str(value).strip().strip('"').strip("'"))
        return p if p.is_absolute() else self.root / p

    @property
    def pretrained(self) -> PretrainedPaths:
        return PretrainedPaths(self.path(self.settings.pretrained_dir))

    def experiment(self, name: str | None = None) -> ExperimentPaths:
        return ExperimentPaths.for_experiment(self.path(self.settings.exp_root), name or self.workflow.get("exp_name"))

    def bind(self, name: str, component: Any) -> Any:
        """Show workflow field ``name`` in ``component`` (wired up by ``app.main.build_app``)."""
        if name not in WORKFLOW_FIELDS:
            raise KeyError(name)
        views = self.components.setdefault(name, [])
        if getattr(component, "elem_id", None) is None:
            component.elem_id = f"wf-{name}-{len(views)}"  # stable hook for browser tests and custom CSS
        views.append(component)
        return component
