"""1B with model version v4 in headless Chromium: the SoVITS panel switches to LoRA fine-tuning (rank choice,
upstream's v4 defaults, no text-LR or discriminator fields), trains the tiny v4 base, Stop saves, Start resumes,
the overview shows the rank's state, and switching back to v2 restores the GAN panel."""

from __future__ import annotations

import pytest

from GPT_SoVITS.checkpoints import load_train_state
from GPT_SoVITS.config import load_config
from GPT_SoVITS.train.config import SoVITSLoRARunConfig
from tests.browser import browser_context, field, launcher, open_tab, type_into, value_of, wait_for_text, wait_for_value
from tests.unit.test_train_data import make_experiment

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAINING_WAIT_MS = 600_000


def _set_slider(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    wait_for_value(page, f"#{elem_id} input[type=number]", str(value))


def _slider_max(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} input[type=range]").get_attribute("max")


def _choose_version(page, version: str) -> None:
    page.locator("#wf-version-0 input").click()
    page.get_by_role("option", name=version, exact=True).click()
    wait_for_value(page, "#wf-version-0 input", version)


def test_v4_panel_trains_lora_stops_resumes_and_switches_back(tmp_path, tiny_pretrained):
    exp = tmp_path / "logs" / "voice"
    make_experiment(exp, n_items=2, seconds=(0.7, 0.8))  # repeated to 100 items: 25 batches of 4 per epoch
    with launcher(tmp_path, pretrained_dir=tiny_pretrained.root) as url, browser_context() as context:
        page = context.new_page()
        page.goto(url)
        open_tab(page, "1 - GPT-SoVITS TTS")
        type_into(page, field("exp_name"), "voice")
        _choose_version(page, "v4")
        open_tab(page, "1B - Fine-tuning")
        # the LoRA panel: rank choice (default 32), upstream's v4 defaults, no text-LR and no discriminator
        page.locator("#sovits-lora-rank").wait_for(state="visible")
        assert page.locator("#sovits-lora-rank").get_by_label("32", exact=True).is_checked()
        assert not page.locator("#sovits-text-lr").is_visible() and not page.locator("#sovits-pre-d").is_visible()
        wait_for_value(page, "#sovits-epochs input[type=number]", "2")
        assert _slider_max(page, "sovits-epochs") == "16" and _slider_max(page, "sovits-save-every") == "10"
        assert value_of(page, "#sovits-save-every input[type=number]") == "1"
        assert value_of(page, "#sovits-pre-g textarea").endswith("gsv-v4-pretrained/s2Gv4.pth")

        page.locator("#sovits-lora-rank").get_by_label("16", exact=True).check()
        _set_slider(page, "sovits-batch", 4)
        _set_slider(page, "sovits-epochs", 16)
        page.locator("#train_sovits-start").click()
        # a step is done (the bar's label; a bare "/" can be Gradio's loading timer, seen before the trainer runs)
        wait_for_text(page, "#train_sovits-progress", "epoch 1/16", TRAINING_WAIT_MS)
        page.locator("#train_sovits-stop").click()
        wait_for_text(page, "#train_sovits-status", "Stopped", TRAINING_WAIT_MS)
        states = sorted((exp / "logs_s2_v4_lora_16").glob("sovits_lora_*.pt"))
        assert states, "Stop lost the training state"

        # one epoch more than the state finished: 1 when the Stop landed inside epoch 1, 2 when a busy machine let
        # epoch 1 (25 steps) end before the signal arrived
        target = load_train_state(states[-1]).epoch + 1
        _set_slider(page, "sovits-epochs", target)
        page.locator("#train_sovits-start").click()
        wait_for_text(page, "#train_sovits-status", "Finished", TRAINING_WAIT_MS)
        job_log = (tmp_path / "logs" / "_jobs" / "train_sovits.log").read_text(encoding="utf-8")
        assert f"resuming from {states[-1]}" in job_log.rsplit("$ ", 1)[1]
        used = load_config(SoVITSLoRARunConfig, exp / "sovits_lora.yaml")  # what the page showed is what ran
        assert (used.train.lora_rank, used.train.batch_size, used.train.epochs) == (16, 4, target)
        releases = [p.name for p in (tmp_path / "SoVITS_weights_v4").glob(f"voice_e{target}_s*_l16.pth")]
        assert releases == [f"voice_e{target}_s{25 * target}_l16.pth"]
        page.get_by_role("button", name="Show training state").click()
        page.get_by_text(f"SoVITS (LoRA rank 16): training state at step {25 * target}").wait_for()

        # back to v2: the GAN panel and its defaults
        _choose_version(page, "v2")
        page.locator("#sovits-text-lr").wait_for(state="visible")
        page.locator("#sovits-lora-rank").wait_for(state="hidden")
        wait_for_value(page, "#sovits-epochs input[type=number]", "8")
        assert _slider_max(page, "sovits-epochs") == "25" and page.locator("#sovits-pre-d").is_visible()
