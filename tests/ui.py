"""UI conventions checked on built (not launched) Gradio apps."""

from __future__ import annotations

import gradio as gr

INPUT_KINDS = (gr.Textbox, gr.Number, gr.Slider, gr.Dropdown, gr.Checkbox, gr.Radio, gr.CheckboxGroup)


def undocumented_controls(demo: gr.Blocks) -> list[str]:
    """Interactive input controls without a one-line explanation (``info=``): each control must have one."""
    return [f"{type(block).__name__} {block.label!r}" for block in demo.blocks.values()
            if isinstance(block, INPUT_KINDS) and block.interactive is not False and not block.info]
