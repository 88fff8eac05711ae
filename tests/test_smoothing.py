"""EMA smoothing debiased at the start (as TensorBoard): constant, step, first points, non-finite values."""
import math

import pytest

from namestudio.engine.smoothing import ema, smooth_series


def test_constant_stays_constant():
    # a plain (biased) EMA would start at 0.4 * 3 = 1.2 and creep up; the debiased one is 3 from the first point
    assert ema([3.0] * 6, 0.6) == pytest.approx([3.0] * 6, abs=1e-12)


def test_first_points_by_hand():
    w = 0.5
    got = ema([2.0, 4.0, 8.0], w)
    # biased: 1, 2.5, 5.25; divided by 1-w^n = 0.5, 0.75, 0.875
    assert got == pytest.approx([2.0, 2.5 / 0.75, 5.25 / 0.875])
    assert got[0] == 2.0                    # the first smoothed point is the first value


def test_step_follows_at_the_ema_pace():
    w = 0.9
    values = [0.0] * 5 + [1.0] * 40
    got = ema(values, w)
    assert got[:5] == [0.0] * 5
    # after the step at index 5, the biased sum over k steps since the jump is 1 - w^k; debiased by 1 - w^n
    for i in range(5, 45):
        k, n = i - 4, i + 1
        assert got[i] == pytest.approx((1 - w ** k) / (1 - w ** n))
    assert 0 < got[5] < got[6] < got[20] < got[44] < 1
    assert got[44] == pytest.approx(1.0, abs=0.05)


def test_weight_zero_is_the_raw_series_and_bounds():
    assert ema([5.0, 1.0, 3.0], 0.0) == [5.0, 1.0, 3.0]
    assert ema([], 0.6) == []
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError):
            ema([1.0], bad)


def test_non_finite_values_pass_through_without_poisoning():
    got = ema([1.0, float("nan"), 1.0, float("inf"), 1.0], 0.8)
    assert math.isnan(got[1]) and math.isinf(got[3])
    assert [got[0], got[2], got[4]] == pytest.approx([1.0, 1.0, 1.0])


def test_points_keep_their_x():
    pts = smooth_series([(10, 2.0), (20, 4.0)], 0.5)
    assert [x for x, _ in pts] == [10, 20] and pts[1][1] == pytest.approx(2.5 / 0.75)


def test_a_flat_line_gets_y_limits_around_it_and_a_sloping_one_none():
    from namestudio.tui.plots import flat_limits
    lo, hi = flat_limits([0.6653824986241057])                # one evaluation
    assert lo < 0.6653824986241057 < hi and hi - lo >= 0.02
    assert flat_limits([2.0, 2.0, float("nan")]) == (1.9, 2.1)
    assert flat_limits([0.0]) == (-0.01, 0.01)
    assert flat_limits([0.5, 0.6]) is None and flat_limits([]) is None


def test_a_running_average_fed_in_pieces_equals_the_whole_and_a_smoother_starts_again_on_a_new_series():
    from namestudio.engine.smoothing import RunningEma
    from namestudio.tui.plots import Smoother
    values = [3.0, float("nan"), 1.0, 4.0, float("inf"), 1.0, 5.0, 9.0, 2.0, 6.0]
    running = RunningEma(0.7)
    for a, b in ((0, 3), (3, 4), (4, 10)):
        running.extend(values[a:b])
    assert [str(v) for v in running.values] == [str(v) for v in ema(values, 0.7)]

    smooth, ys = Smoother(), [2.0, 4.0]
    assert smooth("loss", ys, 0.5) == ema(ys, 0.5)
    ys += [8.0, 1.0]                                        # the history grows: only the new points are smoothed
    assert smooth("loss", ys, 0.5) == ema(ys, 0.5)
    assert smooth("loss", ys, 0.9) == ema(ys, 0.9)          # another weight: from the start
    other = [7.0, 7.0, 7.0, 7.0, 7.0]                        # another run's history (a new, longer list)
    assert smooth("loss", other, 0.9) == pytest.approx([7.0] * 5)
    assert smooth("loss", [1.0], 0.9) == [1.0]
    assert smooth("loss", ys, 0.0) == ys                      # no smoothing: the values
