"""minigrad.tools.progress: a progress bar (tqdm's when installed) or a plain line every tenth."""
import importlib
import io

progress_module = importlib.import_module("minigrad.tools.progress")
PlainProgress = progress_module.PlainProgress


def test_plain_progress_prints_step_loss_and_time_left_ten_times():
    out = io.StringIO()
    seen = []
    bar = PlainProgress(range(20), desc="training", file=out)
    for step in bar:
        seen.append(step)
        bar.set_postfix(loss=1.0 / (step + 1))
    lines = out.getvalue().splitlines()
    assert seen == list(range(20))
    assert len(lines) == 10
    assert lines[0].startswith("training  2/20  loss 0.5  ") and lines[0].endswith("s left")
    assert lines[-1].startswith("training  20/20  loss 0.05  ")


def test_plain_progress_disabled_prints_nothing_and_still_iterates():
    out = io.StringIO()
    assert list(PlainProgress(range(5), disable=True, file=out)) == [0, 1, 2, 3, 4]
    assert out.getvalue() == ""


def test_progress_falls_back_to_plain_lines_without_tqdm(monkeypatch):
    monkeypatch.setattr(progress_module, "tqdm", None)
    bar = progress_module.progress(range(3), desc="x", disable=True)
    assert isinstance(bar, PlainProgress) and list(bar) == [0, 1, 2]


def test_plain_progress_counts_manual_updates():
    out = io.StringIO()
    bar = PlainProgress(total=4, desc="steps", file=out, lines=2)
    for _ in range(4):
        bar.update()
    lines = out.getvalue().splitlines()
    assert [line.split("  ")[1] for line in lines] == ["2/4", "4/4"]
