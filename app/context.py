"""What every tab of the launcher shares: settings, the job runner, the UI language and the workflow fields."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.i18n import I18n, refusal
from app.processes import ProcessManager
from GPT_SoVITS.config import WebUISettings
from GPT_SoVITS.paths import REPO_ROOT, ExperimentPaths, PretrainedPaths
from GPT_SoVITS.versions import DEFAULT_VERSION, RELEASE_ORDER, trainable_versions


@dataclass(frozen=True)
class VersionChoice:
    """The version the launcher starts with, and why (shown under the choice)."""

    version: str
    complete: tuple[str, ...]  # versions whose pretrained files (for fine-tuning) are all present
    missing_default: tuple[Path, ...]  # what the default version lacks


def default_version(pretrained: PretrainedPaths) -> VersionChoice:
    """Upstream's default version when its pretrained files are present, else the newest one whose files are,
    else the default anyway (the page then lists what is missing)."""
    offered = trainable_versions()
    complete = tuple(v for v in offered if not pretrained.missing(v, training=True))
    missing = tuple(pretrained.missing(DEFAULT_VERSION, training=True)) if DEFAULT_VERSION in offered else ()
    if DEFAULT_VERSION in complete or not complete:
        return VersionChoice(DEFAULT_VERSION if DEFAULT_VERSION in offered else offered[-1], complete, missing)
    newest = max(complete, key=RELEASE_ORDER.index)
    return VersionChoice(newest, complete, missing)

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
    "version",  # model version to fine-tune (tab 1 header): pretrained files, weight folders, 1A steps
)


class Workflow:
    """What a newly opened page shows in the workflow fields: the values the last jobs used or produced.

    Nothing here is written on keystrokes and nothing is pushed to open pages: each page keeps its own field
    values (what is on the screen is what a job uses). A job that starts records the fields it used; a job that
    finishes records what it offers to later steps (the slicer's output folder becomes the ASR input ...), and
    the page that started it pre-fills those fields. A page opened (or reloaded) later starts from these values.
    """

    def __init__(self, values: dict[str, str]):
        unknown = set(values) - set(WORKFLOW_FIELDS)
        if unknown:
            raise KeyError(f"unknown workflow field(s): {sorted(unknown)}")
        self._values = {name: values.get(name, "") for name in WORKFLOW_FIELDS}
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._values)

    def remember(self, **values: str) -> None:
        """Values a job used or produced; pages opened from now on start with them."""
        with self._lock:
            for name, value in values.items():
                if name not in self._values:
                    raise KeyError(name)
                self._values[name] = value


@dataclass
class AppContext:
    settings: WebUISettings
    processes: ProcessManager
    i18n: I18n
    workflow: Workflow
    root: Path = REPO_ROOT
    version_choice: VersionChoice | None = None  # the default version and why, found when the launcher starts
    components: dict[str, list[Any]] = field(default_factory=dict)  # workflow field → Gradio components
    # job panels whose finished runs offer values to later steps (wired by app.main after the page is built)
    panels: list[Any] = field(default_factory=list)
    # (fn, inputs, outputs) to run when a page opens (wired by app.main with demo.load)
    on_load: list[tuple[Any, list[Any], list[Any]]] = field(default_factory=list)
    # (fn, inputs, outputs) to run every second while a job of the tab runs, one timer per tab (app.polls); fn
    # returns a dict holding only the outputs that changed
    polls: list[tuple[Any, list[Any], list[Any]]] = field(default_factory=list)
    tab_timer: Any = None  # the status timer of the tab being built (app.polls.polled_tab); Start presses wake it
    tab_timers: list[tuple[Any, tuple[str, ...]]] = field(default_factory=list)  # (timer, its tab's job names)
    page_opened: Any = None  # gr.State: the newest run id when the page opened (runs a page's panels adopt)

    @classmethod
    def create(cls, settings: WebUISettings, language: str | None = None, root: Path = REPO_ROOT) -> AppContext:
        out = root / settings.output_root
        choice = default_version(PretrainedPaths(root / settings.pretrained_dir))
        workflow = Workflow({
            "exp_name": settings.default_exp_name,
            "version": choice.version,
            "slicer_output": str(out / "slicer_opt"),
            "denoise_input": str(out / "slicer_opt"),
            "denoise_output": str(out / "denoise_opt"),
            "asr_input": str(out / "slicer_opt"),
            "asr_output": str(out / "asr_opt"),
        })
        # children always run from the code checkout; every path they get is made absolute by ctx.path()
        processes = ProcessManager(root / settings.exp_root / "_jobs", cwd=REPO_ROOT)
        return cls(settings, processes, I18n(language), workflow, root, choice)

    def path(self, value: str | Path) -> Path:
        """A user-entered path: absolute as given, else relative to the repository root."""
        p = Path(str(value).strip().strip('"').strip("'"))
        return p if p.is_absolute() else self.root / p

    @property
    def pretrained(self) -> PretrainedPaths:
        return PretrainedPaths(self.path(self.settings.pretrained_dir))

    @property
    def weights_root(self) -> Path:
        """Where the release folders (GPT_weights_<version>/, SoVITS_weights_<version>/) are."""
        return self.path(self.settings.weights_root)

    def experiment(self, name: str) -> ExperimentPaths:
        """The experiment named on the page; an invalid name is refused with a message for the user."""
        try:
            return ExperimentPaths.for_experiment(self.path(self.settings.exp_root), str(name or ""))
        except ValueError:
            raise refusal("Invalid experiment name {name!r}: use a plain folder name without slashes.",
                          name=str(name or "")) from None

    def field_of(self, component: Any) -> str | None:
        """The workflow field a component shows, if any."""
        return next((name for name, views in self.components.items() if any(v is component for v in views)), None)

    def bind(self, name: str, component: Any) -> Any:
        """Show workflow field ``name`` in ``component`` (wired up by ``app.main.build_app``)."""
        if name not in WORKFLOW_FIELDS:
            raise KeyError(name)
        views = self.components.setdefault(name, [])
        if not getattr(component, "value", None):
            component.value = self.workflow.get(name)  # what a page shows before its load event arrives
        if getattr(component, "elem_id", None) is None:
            component.elem_id = f"wf-{name}-{len(views)}"  # stable hook for browser tests and custom CSS
        views.append(component)
        return component
