"""The digits data read without importing scikit-learn (core.tasks.digits.load_digits) is scikit-learn's."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sklearn_load_digits

from core.tasks.digits import digits_tensors, load_digits


def test_the_digits_are_scikit_learns_own():
    images, target = load_digits()
    reference = sklearn_load_digits()
    assert images.shape == (1797, 8, 8) and target.dtype.kind == "i"
    np.testing.assert_array_equal(images, reference.images)
    np.testing.assert_array_equal(target, reference.target)


def test_the_split_is_fixed_and_scaled():
    (x_train, y_train), (x_eval, y_eval) = digits_tensors(n_train=100)
    assert x_train.shape == (100, 1, 8, 8) and x_eval.shape == (359, 1, 8, 8)  # 20% of 1,797 held out
    (x_again, _), (x_eval_again, _) = digits_tensors(n_train=100)
    assert torch.equal(x_train, x_again) and torch.equal(x_eval, x_eval_again)  # the same split every time
    (x_other, _), _ = digits_tensors(n_train=100, split_seed=1)
    assert not torch.equal(x_train, x_other)  # the split follows its seed
    assert float(x_train.max()) == 1.0 and float(x_train.min()) == 0.0


def test_reading_the_digits_does_not_import_scikit_learn():
    code = "import sys; from core.tasks.digits import load_digits; load_digits(); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_missing_digits_file_is_one_clear_error(monkeypatch, tmp_path):
    import importlib.machinery

    import core.tasks.digits as digits
    from core.errors import DataError

    fake = importlib.machinery.ModuleSpec("sklearn", None, origin=str(tmp_path / "sklearn" / "__init__.py"))
    monkeypatch.setattr(digits, "find_spec", lambda name: fake)
    with pytest.raises(DataError, match="digits.csv.gz"):
        digits.load_digits()
