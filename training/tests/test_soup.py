"""A model soup is the weighted mean of its checkpoints' float weights, and refuses unlike models."""
import pytest
import torch

from thyroid_seg import soup


def _ck(path, cfg, w, n):
    torch.save({"config": cfg, "state_dict": {"w": torch.full((3,), w), "n": torch.tensor(n)}, "epoch": 1}, path)
    return path


def test_soup_is_the_weighted_mean_of_float_weights(tmp_path):
    a = _ck(tmp_path / "a.pt", {"arch": "x"}, 1.0, 5)
    b = _ck(tmp_path / "b.pt", {"arch": "x"}, 4.0, 7)
    c = soup.soup([a, b], [2.0, 1.0])
    assert torch.allclose(c["state_dict"]["w"], torch.full((3,), 2.0))
    assert c["state_dict"]["n"].item() == 5 and c["epoch"] == 1
    assert [s["weight"] for s in c["soup"]] == [2.0, 1.0]


def test_soup_refuses_checkpoints_of_another_model(tmp_path):
    a = _ck(tmp_path / "a.pt", {"arch": "x"}, 1.0, 5)
    b = _ck(tmp_path / "b.pt", {"arch": "y"}, 1.0, 5)
    with pytest.raises(SystemExit, match="another model config"):
        soup.soup([a, b], [1.0, 1.0])


def test_a_shipped_soup_card_names_its_ingredients_and_their_commands(prepared, tmp_path):
    from thyroid_seg import ship, train
    tiny = ["--data", str(prepared), "--epochs", "1", "--batch", "2", "--width", "0.35", "--threads", "1", "--quiet"]
    train.train(train.parse_args([*tiny, "--out", str(tmp_path / "a"), "--seed", "0"]))
    train.train(train.parse_args([*tiny, "--out", str(tmp_path / "b"), "--seed", "1",
                                  "--init-from", str(tmp_path / "a" / "best.pt")]))
    soup.main(["--ckpt", str(tmp_path / "a" / "best.pt"), str(tmp_path / "b" / "best.pt"),
               "--out", str(tmp_path / "ab" / "best.pt")])
    card = ship.ship(ship.parse_args(["--ckpt", str(tmp_path / "ab" / "best.pt"), "--data", str(prepared),
                                      "--out-dir", str(tmp_path / "models"), "--name", "tiny", "--work",
                                      str(tmp_path / "w"), "--calib-frames", "4"]))
    ingredients = card["training"]["soup"]
    assert [i["checkpoint"] for i in ingredients] == [str(tmp_path / x / "best.pt") for x in ("a", "b")]
    assert all(i["weight"] == 1.0 and i["command"].startswith("python -m thyroid_seg.train") for i in ingredients)
    assert card["training"]["soupCommand"].startswith("python -m thyroid_seg.soup --ckpt")
