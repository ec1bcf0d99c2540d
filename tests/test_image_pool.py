"""ImagePool: identity at size 0, fills then mixes, torch-seeded, state round-trip."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.image_pool import ImagePool  # noqa: E402


def constant_batch(values, size=4):
    """A batch whose image i is filled with values[i], so each returned image can be identified."""
    return torch.stack([torch.full((3, size, size), float(v)) for v in values])


def ids(batch):
    return [int(image[0, 0, 0].item()) for image in batch]


def run_queries(pool, n_queries, batch_size=2, start=0):
    """Query batches of fresh ids start, start+1, ...; return the ids that came back."""
    returned = []
    for q in range(n_queries):
        first = start + q * batch_size
        returned.append(ids(pool.query(constant_batch(range(first, first + batch_size)))))
    return returned


def test_size_zero_returns_input_unchanged():
    pool = ImagePool(0)
    images = torch.randn(3, 3, 8, 8, requires_grad=True)
    assert pool.query(images) is images
    assert len(pool) == 0


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_batch_size_and_shape_are_preserved(batch_size):
    pool = ImagePool(4)
    for _ in range(5):
        images = torch.randn(batch_size, 3, 8, 8)
        assert pool.query(images).shape == images.shape


def test_fills_first_returning_new_images():
    pool = ImagePool(5)
    assert ids(pool.query(constant_batch([1, 2, 3]))) == [1, 2, 3]
    assert ids(pool.query(constant_batch([4, 5]))) == [4, 5]
    assert len(pool) == 5
    assert sorted(ids(torch.cat(pool.images))) == [1, 2, 3, 4, 5]


def test_fills_within_a_batch_then_mixes():
    pool = ImagePool(2)
    torch.manual_seed(0)
    out = ids(pool.query(constant_batch(range(1, 41))))
    assert out[:2] == [1, 2]  # stored and returned as they are
    later = out[2:]
    from_history = [i for position, i in enumerate(later, start=3) if i != position]
    assert from_history, "a full pool must sometimes return a stored image"
    assert len(from_history) < len(later), "a full pool must sometimes return the new image"
    for position, image_id in enumerate(later, start=3):
        assert 1 <= image_id <= position  # the new image or an earlier one, never a future one


def test_full_pool_returns_history_about_half_the_time():
    pool = ImagePool(10)
    torch.manual_seed(1)
    run_queries(pool, 5)  # fill
    returned = [i for batch in run_queries(pool, 200, start=10) for i in batch]
    from_history = sum(1 for position, i in enumerate(returned, start=10) if i != position)
    assert 0.35 < from_history / len(returned) < 0.65
    assert len(pool) == 10


def test_swapped_image_replaces_the_returned_one():
    pool = ImagePool(3)
    pool.query(constant_batch([1, 2, 3]))
    torch.manual_seed(3)
    for new_id in range(4, 30):
        before = ids(torch.cat(pool.images))
        out = ids(pool.query(constant_batch([new_id])))[0]
        after = ids(torch.cat(pool.images))
        if out == new_id:
            assert after == before
        else:
            assert out in before and out not in after and new_id in after
            assert len(after) == 3


def test_outputs_are_detached_and_independent_of_the_input():
    pool = ImagePool(4)
    images = torch.zeros(2, 3, 4, 4, requires_grad=True)
    out = pool.query(images * 1)
    assert not out.requires_grad
    stored = torch.zeros(2, 3, 4, 4)
    pool.query(stored)
    stored.fill_(9.0)  # a later in-place change to the caller's tensor must not rewrite the history
    assert all(image.abs().sum() == 0 for image in pool.images)


def test_deterministic_under_torch_seed():
    torch.manual_seed(123)
    first = run_queries(ImagePool(3), 30)
    torch.manual_seed(123)
    second = run_queries(ImagePool(3), 30)
    torch.manual_seed(124)
    other = run_queries(ImagePool(3), 30)
    assert first == second
    assert first != other


def test_state_round_trip_resumes_exactly():
    torch.manual_seed(5)
    pool = ImagePool(4)
    run_queries(pool, 10)
    state = pool.state_dict()
    rng = torch.get_rng_state()
    expected = run_queries(pool, 20, start=100)

    resumed = ImagePool(4)
    resumed.load_state_dict(state)
    torch.set_rng_state(rng)
    assert run_queries(resumed, 20, start=100) == expected


def test_state_dict_survives_torch_save_with_weights_only(tmp_path):
    pool = ImagePool(3)
    pool.query(constant_batch([7, 8]))
    torch.save(pool.state_dict(), tmp_path / "pool.pt")
    restored = ImagePool(3)
    restored.load_state_dict(torch.load(tmp_path / "pool.pt", weights_only=True))
    assert ids(torch.cat(restored.images)) == [7, 8]


def test_loading_into_a_smaller_pool_keeps_pool_size_images():
    pool = ImagePool(5)
    pool.query(constant_batch([1, 2, 3, 4, 5]))
    smaller = ImagePool(2)
    smaller.load_state_dict(pool.state_dict())
    assert len(smaller) == 2


def test_negative_size_is_rejected():
    with pytest.raises(ValueError):
        ImagePool(-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_works_on_the_images_device():
    pool = ImagePool(2)
    images = torch.randn(6, 3, 8, 8, device="cuda")
    out = pool.query(images)
    assert out.is_cuda and out.shape == images.shape
    assert all(image.is_cuda for image in pool.images)
