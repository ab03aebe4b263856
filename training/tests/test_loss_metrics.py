import numpy as np
import pytest
import torch

from thyroid_seg.losses import bce_loss, make_loss, tversky_loss
from thyroid_seg.metrics import by_size, summarize


def test_tversky_against_hand_computation():
    # probabilities p = sigmoid(logit); choose logits giving p = 0.8, 0.2, 0.6, 0.1
    p = torch.tensor([0.8, 0.2, 0.6, 0.1])
    logits = torch.log(p / (1 - p))
    t = torch.tensor([1.0, 1.0, 0.0, 0.0])
    tp = 0.8 + 0.2
    fp = 0.6 + 0.1
    fn = 0.2 + 0.8
    expected = 1 - (tp + 1) / (tp + 0.3 * fp + 0.7 * fn + 1)
    assert tversky_loss(logits, t).item() == pytest.approx(expected, abs=1e-6)
    # beta > alpha: missing nodule pixels costs more than the same amount of false alarm
    miss = tversky_loss(torch.tensor([-9.0, 9.0]), torch.tensor([1.0, 0.0]) * 0 + torch.tensor([1.0, 1.0]))
    alarm = tversky_loss(torch.tensor([9.0, 9.0]), torch.tensor([1.0, 0.0]))
    assert miss.item() > alarm.item()


def test_tversky_perfect_prediction_is_near_zero_and_bce_matches_torch():
    t = torch.tensor([[1.0, 0.0, 1.0]])
    assert tversky_loss(torch.tensor([[20.0, -20.0, 20.0]]), t).item() < 1e-3
    logits = torch.tensor([0.3, -1.2, 2.0])
    y = torch.tensor([1.0, 0.0, 0.0])
    manual = -(y * torch.log(torch.sigmoid(logits)) + (1 - y) * torch.log(1 - torch.sigmoid(logits))).mean()
    assert bce_loss(logits, y).item() == pytest.approx(manual.item(), abs=1e-6)
    with pytest.raises(ValueError):
        make_loss("dice")


def test_metrics_against_hand_computation():
    gt1 = np.array([[1, 1, 0, 0]])
    pr1 = np.array([[1, 0, 1, 0]])  # tp1 fp1 fn1 tn1
    gt2 = np.array([[1, 1, 1, 0]])
    pr2 = np.array([[1, 1, 1, 0]])  # perfect: tp3 tn1
    m = summarize([pr1, pr2], [gt1, gt2])
    assert m["meanIoU"] == pytest.approx((1 / 3 + 1) / 2)
    assert m["meanDice"] == pytest.approx((2 / 4 + 1) / 2)
    assert m["pooledIoU"] == pytest.approx(4 / 6)
    assert m["pooledDice"] == pytest.approx(8 / 10)
    assert m["sensitivity"] == pytest.approx(4 / 5)
    assert m["specificity"] == pytest.approx(2 / 3)
    assert m["pixelAccuracy"] == pytest.approx(6 / 8)


def test_both_empty_is_a_perfect_score():
    z = np.zeros((4, 4))
    assert summarize([z], [z])["meanIoU"] == 1.0


def test_by_size_bins_frames_by_the_true_area_and_reports_over_outlining():
    gt_small = np.zeros((10, 10), np.uint8)
    gt_small[0, :3] = 1                      # 3 % of the frame
    pred_wide = np.zeros((10, 10), np.uint8)
    pred_wide[0, :6] = 1                     # twice as wide, covering it: IoU 0.5
    gt_big = np.zeros((10, 10), np.uint8)
    gt_big[:5] = 1                           # 50 %
    rows = by_size([pred_wide, gt_big], [gt_small, gt_big])
    assert [r["frames"] for r in rows] == [1, 0, 0, 0, 1]
    assert rows[0]["meanIoU"] == pytest.approx(0.5) and rows[0]["medianAreaRatio"] == pytest.approx(2.0)
    assert rows[-1]["meanIoU"] == pytest.approx(1.0) and rows[-1]["medianAreaRatio"] == pytest.approx(1.0)
    assert np.isnan(rows[1]["meanIoU"])
