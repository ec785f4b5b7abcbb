"""SLS against the algorithm's definition (Vaswani et al. 2019, official sls.Sls defaults, docs/experiments.md §7.4):
Armijo condition, backtracking by beta_b, step-size reset gamma**(1/n) and the bound-to-training-loop path."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from core.training import Run
from core.tasks.digits import DigitsCNN
from experiments.optimizers import SLS, ScheduleFree, SLSMethod


def quadratic(scale: float):
    """f(w) = scale * ||w||^2 / 2 with w0 = (1, 2): gradient scale * w, so the Armijo step is predictable."""
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    return w, lambda: 0.5 * scale * (w * w).sum()


def armijo_holds(f0, f1, eta, grad_sq, c=0.1):
    return f1 <= f0 - c * eta * grad_sq


@pytest.mark.parametrize("scale", [0.5, 3.0, 40.0])
def test_accepted_step_is_the_first_armijo_step_of_the_backtracking(scale):
    w, closure = quadratic(scale)
    opt = SLS([w])
    w0 = w.detach().clone()
    f0, grad_sq = float(closure()), float((scale * w0).pow(2).sum())
    opt.step(closure)
    eta = opt.param_groups[0]["lr"]
    first_try = 1.0 * 2.0 ** (1 / 500)  # reset option 1 before the search
    tries = [first_try * 0.9**k for k in range(100)]
    expected = next(t for t in tries if armijo_holds(f0, float(0.5 * scale * (w0 - t * scale * w0).pow(2).sum()), t, grad_sq))
    assert eta == pytest.approx(expected)
    assert torch.allclose(w.detach(), w0 - eta * scale * w0)  # plain SGD step with the accepted size
    if eta < first_try:  # the previous (larger) trial violated Armijo
        bigger = eta / 0.9
        assert not armijo_holds(f0, float(0.5 * scale * (w0 - bigger * scale * w0).pow(2).sum()), bigger, grad_sq)


def test_step_size_reset_options():
    w, _ = quadratic(1.0)
    assert SLS([w], n_batches_per_epoch=4, gamma=2.0).reset_step(0.5) == pytest.approx(0.5 * 2 ** 0.25)
    # official sls/utils.py reset_step: no bound on the armijo path (eta_max bounds only the goldstein search)
    assert SLS([w], eta_max=10.0).reset_step(9.999) == pytest.approx(9.999 * 2 ** (1 / 500))
    assert SLS([w], reset_option=0).reset_step(0.3) == 0.3
    assert SLS([w], reset_option=2, init_step_size=1.0).reset_step(0.3) == 1.0


def test_next_search_starts_from_the_reset_of_the_last_step():
    w, closure = quadratic(3.0)
    opt = SLS([w])
    opt.step(closure)
    eta1 = opt.param_groups[0]["lr"]
    opt.step(closure)  # gradient shrinks: the reset step eta1 * 2**(1/500) passes Armijo at once
    assert opt.param_groups[0]["lr"] == pytest.approx(eta1 * 2 ** (1 / 500))


def test_no_update_for_a_vanishing_gradient():
    w = torch.nn.Parameter(torch.zeros(2))
    opt = SLS([w])
    opt.step(lambda: (w * w).sum())
    assert torch.equal(w.detach(), torch.zeros(2))


def test_bound_path_equals_closure_path():
    """bind(loss, closure) after the loop's own backward gives the same update as step(closure)."""
    w1, c1 = quadratic(3.0)
    w2, c2 = quadratic(3.0)
    SLS([w1]).step(c1)
    opt = SLS([w2])
    loss = c2()
    loss.backward()
    opt.bind(loss, c2)
    opt.step()
    assert torch.equal(w1.detach(), w2.detach())


def test_sls_trains_in_the_run_loop_and_logs_its_step_size():
    task = DigitsCNN(width=4, n_train=128, batch_size=32)
    method = SLSMethod()
    run = Run(task, method.for_task("sgd", 0.0), 1.0, method, seed=0)
    history = run.train(2)
    assert history.step_loss[-1] < history.step_loss[0]
    assert history.epoch_lr[-1] == run.optimizer.param_groups[0]["lr"] != 1.0


def test_schedule_free_evaluates_at_averaged_weights_and_returns_to_training():
    task = DigitsCNN(width=4, n_train=128, batch_size=32)
    method = ScheduleFree()
    run = Run(task, method.for_task("adam", 0.0), 1e-2, method, seed=0)
    run.train(1)
    y = [p.detach().clone() for p in run.model.parameters()]
    run.optimizer.eval()
    x = [p.detach().clone() for p in run.model.parameters()]
    run.optimizer.train()
    assert any(not torch.equal(a, b) for a, b in zip(x, y))  # the averaged x differs from the iterate y
    run.model.eval()
    assert run.task.evaluate(run.model) == task.evaluate(_with(run.model, x))
    assert all(torch.allclose(p, b, atol=1e-6) for p, b in zip(run.model.parameters(), y))  # back at y (float round trip)
    assert run.optimizer.param_groups[0]["train_mode"]


def _with(model, params):
    """A copy of `model` holding `params` (eval mode)."""
    import copy

    clone = copy.deepcopy(model).eval()
    with torch.no_grad():
        for p, value in zip(clone.parameters(), params):
            p.copy_(value)
    return clone


def test_sls_armijo_reset_is_uncapped_as_the_official_code():
    """docs/experiments.md §7.4 (official sls.Sls defaults); sls/utils.py reset_step (option 1: step * gamma ** (1 /
    n_batches_per_epoch), no bound) — eta_max only bounds the goldstein search."""
    w = nn.Parameter(torch.tensor([1.0, 2.0]))
    assert SLS([w], eta_max=10.0).reset_step(9.999) == pytest.approx(9.999 * 2 ** (1 / 500))
    # one step from 9.99 on f = 1e-4 * ||w||^2 / 2 (grad 1e-4 w, ||g||^2 = 5e-8): the first try
    # eta = 9.99 * 2^(1/500) = 10.00386 passes Armijo at once, so the stored step size exceeds eta_max = 10
    opt = SLS([w], init_step_size=9.99)
    opt.step(lambda: 0.5e-4 * (w * w).sum())
    assert opt.param_groups[0]["lr"] == pytest.approx(9.99 * 2 ** (1 / 500))
