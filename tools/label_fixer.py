"""Label fixer (tab 0d): proofread a ``.list`` file in its own small WebUI.

``python -m tools.label_fixer --list output/asr_opt/voice.list --port 9871``

Page through the clips with their audio players, correct the texts, delete, merge and split clips, and save.
Compared with upstream's tool:

* A folder may be given instead of the ``.list`` file: the single ``.list`` inside it is used.
* Nothing is lost. Saves are atomic, and the first save of a session keeps the original file as
  ``<name>.list.bak``. Merge and split write *new* audio files next to the originals and leave the originals
  untouched on disk (only the label lines change), so every step can be undone by hand.
* Edited texts on the page are kept when paging, deleting, merging or splitting (upstream dropped edits that
  were not submitted first).
* Each line's language can be changed (a Chinese text marked EN would otherwise be read as English and lose
  almost all its phones in formatting), and a save says how many lines were edited since the file was opened.

The core, :class:`LabelSession`, has no UI; :func:`build_ui` wraps it in Gradio.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import threading
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from GPT_SoVITS.audio import load_audio, write_wav
from GPT_SoVITS.labels import LabelEntry, LabelFileError, find_list_file, read_list, resolve_audio_path, write_list
from GPT_SoVITS.logs import setup_logging
from tools.webui_launch import launch

log = logging.getLogger(__name__)

DEFAULT_PORT = 9871
DEFAULT_BATCH = 10
MAX_SPLIT_SECONDS = 120.0
SPACE_JOINED_LANGUAGES = {"en", "ko"}  # languages whose merged texts need a space between them
LANGUAGE_CODES = ("ZH", "EN", "JA", "KO", "YUE")  # what the language column of a line can be set to


#: What an action did, in English; the UI shows the translation of the same template (see ``build_ui``).
MESSAGES = {
    "loaded": "{n} line(s) loaded.",
    "edited": "{n} line(s) changed on this page.",
    "unchanged": "No text changed.",
    "saved": "Saved {n} line(s) to {file}; {edited} line(s) edited since it was opened.",
    "saved_backup": "Saved {n} line(s) to {file}; {edited} line(s) edited since it was opened (original kept as "
                    "{backup}).",
    "deleted": "Deleted {n} line(s) from the list: {names} (audio files kept on disk).",
    "merged": "Merged {names} into {file}; the original files are kept on disk.",
    "split": "Split {name} at {at} s into {first} and {second}; the original file is kept on disk. Edit both texts.",
    "select_delete": "Select the clips to delete first.",
    "select_merge": "Select at least two clips to merge.",
    "select_split": "Select exactly one clip to split.",
    "split_outside": "The split point {at} s is outside the clip (0 - {length} s).",
    "failed": "The action failed: {reason}",
}


class Change(tuple):
    """``(kind, params)``: a key of :data:`MESSAGES` and its format values."""

    def __new__(cls, kind: str, **params: Any) -> Change:
        return super().__new__(cls, (kind, params))

    @property
    def kind(self) -> str:
        return self[0]

    def text(self, templates: dict[str, str] = MESSAGES) -> str:
        return templates[self[0]].format(**self[1])


class LabelEditError(ValueError):
    """An action cannot be done as asked (e.g. merge with fewer than two clips selected)."""

    def __init__(self, kind: str, **params: Any):
        self.change = Change(kind, **params)
        super().__init__(self.change.text())


def _free_path(folder: Path, stem: str, suffix: str) -> Path:
    """``<folder>/<stem><suffix>``, or with ``_1``, ``_2`` ... appended until the name is unused."""
    candidate, n = folder / f"{stem}{suffix}", 0
    while candidate.exists():
        n += 1
        candidate = folder / f"{stem}_{n}{suffix}"
    return candidate


class LabelSession:
    """The label lines of one ``.list`` file in memory, with the editing actions of the label fixer.

    Indices are positions in :attr:`entries`. Every action returns a short message saying what changed.
    """

    def __init__(self, path: Path | str, audio_dir: Path | str | None = None):
        self.path = find_list_file(path)
        self.audio_dir = audio_dir
        loaded = read_list(self.path, audio_dir, check_audio=True)
        self.entries: list[LabelEntry] = list(loaded.entries)
        self.problems = loaded.problems
        self.backup: Path | None = None
        self.edited: set[str] = set()  # audio paths of the lines whose text or language changed since opening
        self.lock = threading.RLock()  # Gradio runs handlers in worker threads

    def __len__(self) -> int:
        return len(self.entries)

    def audio_path(self, index: int) -> Path:
        return resolve_audio_path(self.entries[index].wav_path, self.audio_dir)

    def audio_folders(self) -> list[Path]:
        """Folders the UI must be allowed to serve audio from."""
        return sorted({self.audio_path(i).parent.resolve() for i in range(len(self))})

    def clamp(self, index: int) -> int:
        return max(0, min(int(index), max(0, len(self) - 1)))

    def page(self, index: int, size: int) -> list[int]:
        """Entry indices of the page starting at ``index``."""
        start = self.clamp(index)
        return list(range(start, min(start + max(1, int(size)), len(self))))

    # ---- editing -------------------------------------------------------------------------------------------
    def set_texts(self, indices: Sequence[int], texts: Sequence[str],
                  languages: Sequence[str | None] | None = None) -> int:
        """Replace the texts (and, when given, the language codes) of ``indices``; returns how many lines changed."""
        changed = 0
        languages = list(languages) if languages is not None else [None] * len(indices)
        with self.lock:
            for index, text, language in zip(indices, texts, languages, strict=False):
                if not 0 <= index < len(self):
                    continue
                entry = self.entries[index]
                new = replace(entry, text=" ".join(str(text).replace("|", " ").split()),
                              language=str(language).strip() if language else entry.language)
                if new != entry:
                    self.entries[index] = new
                    self.edited.add(new.wav_path)
                    changed += 1
        return changed

    def delete(self, indices: Sequence[int]) -> Change:
        """Remove the selected lines from the list (their audio files stay on disk)."""
        targets = sorted(set(indices))
        if not targets:
            raise LabelEditError("select_delete")
        with self.lock:
            names = [self.entries[i].name for i in targets]
            for i in reversed(targets):
                del self.entries[i]
        return Change("deleted", n=len(targets), names=", ".join(names))

    def merge(self, indices: Sequence[int], interval: float = 0.0) -> Change:
        """Join the selected clips (in list order) with ``interval`` seconds of silence into a new file.

        The merged line replaces the first selected line; the other lines are removed. Original files are
        not modified.
        """
        targets = sorted(set(indices))
        if len(targets) < 2:
            raise LabelEditError("select_merge")
        with self.lock:
            first = self.entries[targets[0]]
            audio, sr = load_audio(self.audio_path(targets[0]))
            gap = np.zeros(int(round(max(0.0, interval) * sr)), dtype=np.float32)
            parts = [audio]
            for i in targets[1:]:
                parts += [gap, load_audio(self.audio_path(i), sr=sr)[0]]
            src = self.audio_path(targets[0])
            out = _free_path(src.parent, f"{src.stem}_merged", ".wav")
            write_wav(out, np.concatenate(parts), sr)
            joiner = " " if self._lang(first) in SPACE_JOINED_LANGUAGES else ""
            text = joiner.join(self.entries[i].text for i in targets)
            names = [self.entries[i].name for i in targets]
            self.entries[targets[0]] = LabelEntry(self._path_for(out, first), first.speaker, first.language, text)
            for i in reversed(targets[1:]):
                del self.entries[i]
        return Change("merged", names=", ".join(names), file=out.name)

    def split(self, indices: Sequence[int], at_seconds: float) -> Change:
        """Cut the one selected clip at ``at_seconds`` into two new files; both lines keep the text."""
        targets = sorted(set(indices))
        if len(targets) != 1:
            raise LabelEditError("select_split")
        with self.lock:
            index = targets[0]
            entry, src = self.entries[index], self.audio_path(index)
            audio, sr = load_audio(src)
            cut = int(round(at_seconds * sr))
            if not 0 < cut < len(audio):
                raise LabelEditError("split_outside", at=f"{at_seconds:.2f}", length=f"{len(audio) / sr:.2f}")
            outs = []
            for part, tag in ((audio[:cut], "a"), (audio[cut:], "b")):
                out = _free_path(src.parent, f"{src.stem}_{tag}", ".wav")
                write_wav(out, part, sr)
                outs.append(out)
            self.entries[index:index + 1] = [
                LabelEntry(self._path_for(out, entry), entry.speaker, entry.language, entry.text) for out in outs]
        return Change("split", name=entry.name, at=f"{at_seconds:.2f}", first=outs[0].name, second=outs[1].name)

    def save(self) -> Change:
        """Write the list atomically; the first save of the session first copies the original to ``.bak``."""
        with self.lock:
            if self.backup is None and self.path.exists():
                self.backup = _free_path(self.path.parent, self.path.name, ".bak")
                shutil.copy2(self.path, self.backup)
            write_list(self.path, self.entries)
        if self.backup is not None:
            return Change("saved_backup", n=len(self), file=self.path.name, backup=self.backup.name,
                          edited=len(self.edited))
        return Change("saved", n=len(self), file=self.path.name, edited=len(self.edited))

    def _path_for(self, new_file: Path, like: LabelEntry) -> str:
        """Write a new file's path in the style of the line it comes from (absolute stays absolute)."""
        if self.audio_dir:  # the clip is found by its name inside audio_dir: keep the line's folder part
            return like.wav_path[:len(like.wav_path) - len(like.name)] + new_file.name
        return str(new_file)

    @staticmethod
    def _lang(entry: LabelEntry) -> str:
        try:
            return entry.lang
        except ValueError:
            return entry.language.lower()


# ---- UI --------------------------------------------------------------------------------------------------------
def translated_messages(i18n) -> dict[str, str]:
    """:data:`MESSAGES` in the UI language (literal keys, so the i18n scanner sees them)."""
    return {
        "loaded": i18n("{n} line(s) loaded."),
        "edited": i18n("{n} line(s) changed on this page."),
        "unchanged": i18n("No text changed."),
        "saved": i18n("Saved {n} line(s) to {file}; {edited} line(s) edited since it was opened."),
        "saved_backup": i18n("Saved {n} line(s) to {file}; {edited} line(s) edited since it was opened (original "
                             "kept as {backup})."),
        "deleted": i18n("Deleted {n} line(s) from the list: {names} (audio files kept on disk)."),
        "merged": i18n("Merged {names} into {file}; the original files are kept on disk."),
        "split": i18n("Split {name} at {at} s into {first} and {second}; the original file is kept on disk. "
                      "Edit both texts."),
        "select_delete": i18n("Select the clips to delete first."),
        "select_merge": i18n("Select at least two clips to merge."),
        "select_split": i18n("Select exactly one clip to split."),
        "split_outside": i18n("The split point {at} s is outside the clip (0 - {length} s)."),
        "failed": i18n("The action failed: {reason}"),
    }


def run_action(session: LabelSession, action: str, selected: Sequence[int], start: int, size: int,
               gap: float = 0.0, cut: float = 0.0, edited: int = 0) -> tuple[list[Change], int]:
    """One button of the UI, after the page's texts were applied: returns (what changed, new page start).

    Raises :class:`LabelEditError` when the selection does not fit the action.
    """
    changes = [Change("edited", n=edited)] if edited else []
    if action == "goto":
        return changes + ([session.save()] if edited else []), start
    if action in ("prev", "next"):
        step = -size if action == "prev" else size
        return [*changes, session.save()], session.clamp(start + step)
    if action == "submit" and not edited:
        return [Change("unchanged")], start
    if action in ("submit", "save"):
        return [*changes, session.save()], start
    if action == "delete":
        changes.append(session.delete(selected))
    elif action == "merge":
        changes.append(session.merge(selected, float(gap)))
    elif action == "split":
        changes.append(session.split(selected, float(cut)))
    else:
        raise ValueError(f"unknown action {action!r}")
    return [*changes, session.save()], session.clamp(start)


def build_ui(session: LabelSession, i18n, batch_size: int = DEFAULT_BATCH):
    """The label fixer as a ``gr.Blocks`` (nothing is launched here)."""
    import gradio as gr

    rows = max(1, int(batch_size))
    templates = translated_messages(i18n)
    with gr.Blocks(title=i18n("Label fixer")) as demo:
        gr.Markdown(i18n("## Label fixer: {name}", name=str(session.path)))
        gr.Markdown(i18n("Edit the texts, then press Submit text or Save file. Paging and every action keep the "
                         "edits of the current page. Merge and split write new audio files and keep the "
                         "originals; the first save keeps the original list as a .bak file."))
        if session.problems:
            details = "\n".join(f"- {p}" for p in session.problems[:20])
            gr.Markdown(i18n("**{n} problem(s) in this file** (lines that do not have four fields are dropped "
                             "on save; the .bak file keeps them):", n=len(session.problems)) + "\n" + details)
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            index = gr.Slider(0, max(1, len(session) - 1), 0, step=1, label=i18n("Index"),
                              info=i18n("First line shown on this page."), elem_id="index")
            batch = gr.Slider(1, rows, rows, step=1, label=i18n("Batch size"), info=i18n("Lines shown per page."))
        with gr.Row():
            change_btn = gr.Button(i18n("Change index"))
            prev_btn = gr.Button(i18n("Previous page"), elem_id="prev")
            next_btn = gr.Button(i18n("Next page"), elem_id="next")
            submit_btn = gr.Button(i18n("Submit text"), variant="primary", elem_id="submit")
            save_btn = gr.Button(i18n("Save file"), variant="primary", elem_id="save")
        texts, langs, audios, checks = [], [], [], []
        for row in range(rows):
            with gr.Row():
                texts.append(gr.Textbox(label=i18n("Text"), scale=5, elem_id=f"text-{row}",
                                        info=i18n("What is said in this clip; edit it, then submit or save.")))
                langs.append(gr.Dropdown(list(LANGUAGE_CODES), label=i18n("Language"), scale=1,
                                         allow_custom_value=True, elem_id=f"lang-{row}",
                                         info=i18n("The language of the text; 1A reads the text in it.")))
                audios.append(gr.Audio(type="filepath", interactive=False, scale=4, label=i18n("Audio")))
                checks.append(gr.Checkbox(label=i18n("Select"), scale=1, elem_id=f"select-{row}",
                                          info=i18n("For delete, merge or split.")))
        with gr.Row():
            delete_btn = gr.Button(i18n("Delete selected"), variant="stop")
            invert_btn = gr.Button(i18n("Invert selection"))
            merge_btn = gr.Button(i18n("Merge selected"))
            interval = gr.Slider(0, 2, 0.3, step=0.01, label=i18n("Merge interval (s)"),
                                 info=i18n("Silence inserted between merged clips."))
            split_btn = gr.Button(i18n("Split selected"))
            split_at = gr.Slider(0, MAX_SPLIT_SECONDS, 1.0, step=0.1, label=i18n("Split point (s)"),
                                 info=i18n("Where the selected clip is cut in two."))
        gr.HTML('<a href="?__theme=light">' + i18n("Light theme") + '</a> · <a href="?__theme=dark">'
                + i18n("Dark theme") + "</a>")

        outputs = [index, status, *texts, *langs, *audios, *checks]

        def render(start: int, size: int, message: str) -> list[Any]:
            start = session.clamp(start)
            shown = session.page(start, size)
            text_updates, lang_updates, audio_updates, check_updates = [], [], [], []
            for row in range(rows):
                visible = row < len(shown)
                if visible:
                    entry, audio = session.entries[shown[row]], session.audio_path(shown[row])
                    text_updates.append(gr.update(value=entry.text, label=f"{shown[row]}: {entry.name}",
                                                  visible=True))
                    lang_updates.append(gr.update(value=entry.language, visible=True))
                    audio_updates.append(gr.update(value=str(audio) if audio.is_file() else None, visible=True))
                else:
                    text_updates.append(gr.update(value="", visible=False))
                    lang_updates.append(gr.update(value=None, visible=False))
                    audio_updates.append(gr.update(value=None, visible=False))
                check_updates.append(gr.update(value=False, visible=visible))
            slider = gr.update(value=start, maximum=max(1, len(session) - 1))
            return [slider, message, *text_updates, *lang_updates, *audio_updates, *check_updates]

        def act(action: str, start: float, size: float, gap: float, cut: float, *values: Any) -> list[Any]:
            start, size = session.clamp(int(start)), int(size)
            with session.lock:
                shown = session.page(start, size)
                selected = [shown[r] for r in range(len(shown)) if values[2 * rows + r]]
                edited = session.set_texts(shown, values[:len(shown)], values[rows:rows + len(shown)])
                try:
                    changes, start = run_action(session, action, selected, start, size, gap, cut, edited)
                    message = " ".join(change.text(templates) for change in changes)
                except LabelEditError as exc:
                    message = "⚠️ " + exc.change.text(templates)
                except OSError as exc:
                    message = "⚠️ " + Change("failed", reason=exc.strerror or exc).text(templates)
                    log.warning("%s failed: %s", action, exc)
            log.info("%s: %s", action, message)
            return render(start, size, message)

        inputs = [index, batch, interval, split_at, *texts, *langs, *checks]
        for button, action in ((change_btn, "goto"), (prev_btn, "prev"), (next_btn, "next"),
                               (submit_btn, "submit"), (save_btn, "save"), (delete_btn, "delete"),
                               (merge_btn, "merge"), (split_btn, "split")):
            button.click(partial(act, action), inputs=inputs, outputs=outputs)
        invert_btn.click(lambda *flags: [not f for f in flags], inputs=checks, outputs=checks)
        batch.release(lambda start, size: render(start, size, ""), inputs=[index, batch], outputs=outputs)
        demo.load(lambda: render(0, rows, Change("loaded", n=len(session)).text(templates)), outputs=outputs)
    return demo


# ---- CLI -------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.label_fixer", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--list", "--load_list", dest="list_path", type=Path, required=True,
                        help="the .list file to proofread, or a folder holding exactly one")
    parser.add_argument("--audio-dir", type=Path, default=None,
                        help="optional folder holding the clips (the clip is <audio-dir>/<file name from the list>)")
    parser.add_argument("--port", "--webui_port_subfix", dest="port", type=int, default=DEFAULT_PORT,
                        help="port of this WebUI")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes it to your network)")
    parser.add_argument("--batch-size", "--g_batch", dest="batch_size", type=int, default=DEFAULT_BATCH,
                        help="lines per page")
    parser.add_argument("--lang", default=None, help="UI language (en_US, zh_CN; default: system locale)")
    parser.add_argument("--share", action="store_true", help="also create a public Gradio share link")
    parser.add_argument("--log-file", type=Path, default=None, help="also write the log to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_file)
    from app.i18n import I18n

    try:
        session = LabelSession(args.list_path, args.audio_dir)
        i18n = I18n(args.lang)
    except (LabelFileError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    if session.problems:
        log.warning("%d problem(s) in %s:\n%s", len(session.problems), session.path,
                    "\n".join(f"  {p}" for p in session.problems[:50]))
    demo = build_ui(session, i18n, args.batch_size)
    log.info("label fixer for %s (%d lines) on http://%s:%d", session.path, len(session), args.host, args.port)
    try:
        launch(demo, server_name=args.host, server_port=args.port, share=args.share, inbrowser=False,
               allowed_paths=[str(p) for p in session.audio_folders()])
    except OSError as exc:
        log.error("Cannot start the label fixer on port %d: %s (is it already open?)", args.port, exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
