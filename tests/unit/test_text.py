import numpy as np
import pytest

from models.text import TextEncoder, catalog_text, pack_embedding, unpack_embeddings


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder(device="cpu", batch_size=2)


def test_catalog_text_leaves_out_empty_and_unknown_parts():
    assert catalog_text("Red mug", "", "unknown") == "Red mug"
    assert catalog_text("Red mug", "Stoneware", "kitchen") == "Red mug. Stoneware. category: kitchen"


def test_embeddings_are_unit_vectors_and_similar_titles_are_closer(encoder):
    v = encoder.encode(["red ceramic coffee mug", "blue ceramic tea cup", "wireless gaming mouse",
                        "red ceramic coffee mug"])
    assert v.shape == (4, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1
    # Batched with other texts or not, a text gets the same vector.
    np.testing.assert_allclose(v[3], v[0], atol=1e-5)


def test_cache_returns_the_same_vectors(tmp_path):
    texts = ["christmas tree ornament", "garden hose"]
    first = TextEncoder(device="cpu", cache_dir=tmp_path).encode(texts)
    assert len(list(tmp_path.glob("*.npy"))) == 2
    again = TextEncoder(device="cpu", cache_dir=tmp_path).encode(texts[::-1])
    np.testing.assert_array_equal(again, first[::-1])


def test_packed_embeddings_are_small_and_close():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    blobs = [pack_embedding(x) for x in v]
    assert all(len(b) <= 400 for b in blobs)
    back = unpack_embeddings(blobs)
    assert back.shape == (3, 384)
    assert np.all(np.sum(back * v, axis=1) > 0.999)
    assert unpack_embeddings([]).shape == (0, 384)
