"""The bench's plumbing on a tiny fixture: every key comes out, numeric. No targets are checked here."""
import json
import math

import pytest

from helpers import write_names_folder
from namestudio.tui.bench import SECTION_KEYS, TARGETS, percentile
from namestudio.tui.bench.common import SKIP_KEYS
from namestudio.tui.cli import main

REQUIRED = ["tutorial_names_per_s", "ns_names_per_s", "tutorial_val_acc_at_budget", "ns_seconds_to_tutorial_acc",
            "speedup_to_same_accuracy", "mylstm_over_lstm_epoch_time", "tui_over_cli_throughput",
            "tui_key_latency_ms_p95", "tui_rest_key_latency_ms_p95", "tui_quit_seconds", "cli_names_per_s",
            "tui_step_to_screen_seconds_max", "cli_help_seconds", "tui_first_paint_seconds"]
OPTIONAL = {"mylstm_scripted_over_lstm_epoch_time", "mylstm_compiled_over_lstm_epoch_time",
            "mylstm_compile_warmup_seconds"}  # full runs only


def numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    data = write_names_folder(root / "names", n_per_label=400)  # several batches an epoch
    mp = pytest.MonkeyPatch()
    mp.setenv("NAMESTUDIO_BENCH_PRESET", "tiny")
    mp.setenv("NAMESTUDIO_DATA_DIR", str(root / "userdata"))
    mp.chdir(root)
    try:
        import io
        import contextlib
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["bench", "--quick", "--data", str(data), "--json"])
    finally:
        mp.undo()
    assert code == 0
    return json.loads(out.getvalue().strip().splitlines()[-1])


def not_measured(result) -> set:
    """Keys that a "*_skipped" reason covers (e.g. no tmux here)."""
    return {k for why, keys in SKIP_KEYS.items() if result[why] for k in keys}


def test_every_key_is_present_and_numeric(result):
    assert result["skipped"].keys() <= {"gpu"}, result["skipped"]
    skipped = not_measured(result)
    for key in REQUIRED:
        assert key in skipped or numeric(result[key]), (key, result[key])
    for section, keys in SECTION_KEYS.items():
        for key in keys:
            assert key in result
            if key in skipped:
                assert result[key] is None, key
            elif section != "gpu" and key not in OPTIONAL:
                assert numeric(result[key]), (key, result[key])


def test_a_measurement_that_cannot_run_says_why(result):
    skipped = not_measured(result)
    for why, keys in SKIP_KEYS.items():
        assert result[why] is None or (isinstance(result[why], str) and result[why])
        for k in keys:
            if k in TARGETS:
                assert (result[k] is None) == (k in skipped), (k, result[k], result[why])


def test_gpu_keys_are_null_with_a_reason_without_cuda(result):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert "CUDA" in result["skipped"]["gpu"]
    assert all(result[k] is None for k in SECTION_KEYS["gpu"])


def test_targets_are_reported_not_enforced(result):
    assert set(result["targets"]) == set(TARGETS)
    skipped = not_measured(result)
    for key, t in result["targets"].items():
        assert t["met"] in ((None,) if key in skipped else (True, False)), key
    assert result["preset"] == "tiny"


def test_absent_device_is_one_line_error(capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["bench", "--device", "cuda", "--json"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cuda" in err and "not available" in err


def test_unknown_skip_is_one_line_error(capsys):
    assert main(["bench", "--skip", "tutorial,nope"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope" in err and "a bug" not in err  # a user error, not a crash


def test_percentile_is_nearest_rank():
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 95) is None


async def test_floor_app_switches_tabs_with_2_and_3():
    from namestudio.tui.bench.floor_app import KEYS, FloorApp
    from textual.widgets import TabbedContent

    app = FloorApp()
    async with app.run_test(size=(60, 12)) as pilot:
        tabs = app.query_one("#tabs", TabbedContent)
        for key in ("3", "2", "3"):
            await pilot.press(key)
            await pilot.pause()
            assert tabs.active == KEYS[key]


def test_tmux_times_the_floor_app_from_outside():
    from namestudio.tui.bench import floor_app, tmux
    from namestudio.tui.bench.common import child_env, probe_command

    why = tmux.unavailable()
    if why:
        pytest.skip(why)
    with tmux.Tmux(probe_command("floor_app"), width=60, height=12, env=child_env()) as t:
        assert t.wait_for(lambda s: floor_app.MARKERS["two"] in s, 60) is not None
        assert floor_app.MARKERS["three"] not in t.screen()
        shows_three = lambda s: floor_app.MARKERS["three"] in s  # noqa: E731
        latencies = tmux.time_key_presses(t, [("3", shows_three)], gap=(0, 0))
        assert len(latencies) == 1 and latencies[0] >= 0
        assert shows_three(t.screen())
        sent = t.send("C-q")
        ended = t.wait_exit(30)
        assert ended is not None and ended >= sent


def test_a_reference_that_learned_nothing_gives_no_floor_beating_claim():
    from namestudio.tui.bench.tutorial import trivial_floors
    labels = ["Russian"] * 6 + ["English"] * 3 + ["Czech"]
    floors = trivial_floors(labels)
    assert floors["accuracy"][0] == pytest.approx(0.6) and "Russian" in floors["accuracy"][1]
    assert floors["balanced_accuracy"][0] == pytest.approx(1 / 3)


def test_a_speedup_is_claimed_only_against_a_reference_that_learned_something():
    from namestudio.tui.bench.tutorial import speedups
    floors = {"accuracy": (0.5, "always answering Russian"), "balanced_accuracy": (0.25, "answering any one language")}
    at_chance = speedups({"accuracy": 0.055, "balanced_accuracy": 0.25}, floors, 15.0, 0.01, 0.02)
    assert at_chance["speedup_to_same_accuracy"] is None and at_chance["ns_seconds_to_tutorial_acc"] is None
    assert at_chance["speedup_to_same_balanced_accuracy"] is None
    assert "(0.055) is no better than always answering Russian (0.500)" in at_chance["tutorial_speedup_skipped"]
    assert at_chance["tutorial_balanced_speedup_skipped"] and "at chance" in at_chance["summary"]
    learned = speedups({"accuracy": 0.6, "balanced_accuracy": 0.4}, floors, 60.0, 0.5, None)
    assert learned["speedup_to_same_accuracy"] == pytest.approx(120.0) and learned["tutorial_speedup_skipped"] is None
    assert learned["speedup_to_same_balanced_accuracy"] is None and learned["tutorial_balanced_speedup_skipped"] is None
    assert learned["summary"] == "speedup 120x · balanced: namestudio did not reach the reference"


def test_the_speedup_is_null_with_a_reason_or_a_number(result):
    # the bench's own output agrees: a reason and no figure, or a figure and no reason
    for why, key in (("tutorial_speedup_skipped", "speedup_to_same_accuracy"),
                     ("tutorial_balanced_speedup_skipped", "speedup_to_same_balanced_accuracy")):
        assert (result[why] is None) or (result[key] is None and "no better than" in result[why])
