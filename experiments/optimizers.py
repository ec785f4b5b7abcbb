"""Methods that replace the task's optimizer: SLS (paper), Schedule-Free and Prodigy (beyond the paper).

Each is a `core.schedules.Schedule` (constant LR from the loop's point of view) that is also the run's
optimizer factory (core.training.Run's `optimizer=`): `method.for_task(optimizer, momentum)` tells it the
task's own optimizer, calling it builds its optimizer, and `wrap_task` gives the run a task view where the
optimizer needs one:
  * SLS needs to re-evaluate the batch loss at trial points (`TaskWithClosure`);
  * Schedule-Free evaluates at its averaged weights x, not the training iterate y (`TaskWithEvalMode`).
"""
from __future__ import annotations

import torch
from torch import nn

from core.schedules import Schedule
from core.tasks import Task


class SLS(torch.optim.Optimizer):
    """SGD + Armijo backtracking line search (Vaswani et al. 2019), the official `sls.Sls` defaults
    (docs/experiments.md §7.4): n_batches_per_epoch 500, init_step_size 1, c 0.1, beta_b 0.9, gamma 2, reset_option 1,
    eta_max 10 (the official code uses eta_max and beta_f only in its goldstein search; kept for the signature).

    Per step: reset the step size (option 1: x gamma**(1/n_batches_per_epoch), not bounded, as the official
    `sls/utils.py` reset_step; 0: keep; 2: back to init), then try w - eta*g and shrink eta by beta_b until
    f(w - eta*g) <= f(w) - c*eta*||g||^2 (at most 100 tries; if none passes, step 1e-6). No update when
    ||g|| < 1e-8. The accepted eta is the group's `lr` (logged as model_lr, as the repo logs step_size).

    `step(closure)`: as the official API, closure() returns the batch loss and step() backpropagates.
    `step()` after `bind(loss, closure)`: the training loop already ran forward/backward on the batch.
    """

    def __init__(self, params, n_batches_per_epoch: int = 500, init_step_size: float = 1.0, c: float = 0.1,
                 beta_b: float = 0.9, gamma: float = 2.0, reset_option: int = 1, eta_max: float = 10.0,
                 max_backtracks: int = 100):
        super().__init__(params, dict(lr=init_step_size))
        self.n_batches_per_epoch, self.init_step_size, self.c, self.beta_b = n_batches_per_epoch, init_step_size, c, beta_b
        self.gamma, self.reset_option, self.eta_max, self.max_backtracks = gamma, reset_option, eta_max, max_backtracks
        self._bound = None

    def bind(self, loss: torch.Tensor, closure) -> None:
        self._bound = (loss.detach(), closure)

    def reset_step(self, step_size: float) -> float:
        if self.reset_option == 1:
            return step_size * self.gamma ** (1.0 / self.n_batches_per_epoch)  # official: no eta_max on armijo
        if self.reset_option == 2:
            return self.init_step_size
        return step_size

    def step(self, closure=None):
        if closure is not None:
            self.zero_grad()
            with torch.enable_grad():
                loss = closure()
            loss.backward()
        else:
            if self._bound is None:
                raise RuntimeError("SLS.step() needs a closure or a preceding bind(loss, closure)")
            loss, closure = self._bound
            self._bound = None
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        step_size = self.reset_step(self.param_groups[0]["lr"])
        with torch.no_grad():
            start = [p.detach().clone() for p in params]
            grads = [p.grad.detach().clone() for p in params]
            grad_norm_sq = float(sum((g * g).sum() for g in grads))
            if grad_norm_sq ** 0.5 >= 1e-8:
                for _ in range(self.max_backtracks):
                    self._move(params, start, grads, step_size)
                    if float(closure()) <= float(loss) - step_size * self.c * grad_norm_sq:
                        break
                    step_size *= self.beta_b
                else:
                    self._move(params, start, grads, 1e-6)
        for group in self.param_groups:
            group["lr"] = step_size
        return loss

    @staticmethod
    def _move(params, start, grads, step_size):
        for p, p0, g in zip(params, start, grads):
            p.copy_(p0 - step_size * g)


def _forward(attribute: str) -> property:
    return property(lambda self: getattr(self.inner, attribute),
                    lambda self, value: setattr(self.inner, attribute, value))


class TaskProxy(Task):
    """Delegates to the wrapped task; its device, steps per epoch and names go to it too."""

    name, loss_name, metric_name, metric_mode, device, steps_per_epoch = (
        _forward(a) for a in ("name", "loss_name", "metric_name", "metric_mode", "device", "steps_per_epoch"))

    def __init__(self, task: Task, optimizer: torch.optim.Optimizer):
        self.inner, self.optimizer = task, optimizer

    def __getattr__(self, attribute):  # only reached for attributes the proxy lacks
        return getattr(self.__dict__["inner"], attribute)

    def train_batches(self, generator):
        return self.inner.train_batches(generator)

    def build_model(self):
        return self.inner.build_model()

    def train_loss(self, model, batch):
        return self.inner.train_loss(model, batch)

    def train_objective(self, model, batch):
        return self.inner.train_objective(model, batch)

    def evaluate(self, model):
        return self.inner.evaluate(model)


class TaskWithClosure(TaskProxy):
    """Gives SLS its closure: every evaluation of a step's batch reuses one seed (same dropout masks),
    like the official `closure_deterministic`, but drawn from the run's RNG so resume stays exact."""

    def train_objective(self, model, batch):
        seed = int(torch.randint(0, 2**62, (1,)))
        devices = [self.inner.device] if self.inner.device.type == "cuda" else []

        def objective():
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                return self.inner.train_objective(model, batch)

        loss, recorded = objective()
        self.optimizer.bind(loss, lambda: objective()[0])
        return loss, recorded

    def train_loss(self, model, batch):
        return self.train_objective(model, batch)[0]


class TaskWithEvalMode(TaskProxy):
    """Schedule-Free: evaluate at the averaged weights. BatchNorm statistics are re-estimated at those
    weights on a few training batches (the schedulefree README's advice), from a fixed generator and a
    forked RNG so the run's own random streams are untouched."""

    bn_batches = 8

    def evaluate(self, model):
        self.optimizer.eval()
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                model.train()
                for i, batch in enumerate(self.inner.train_batches(torch.Generator().manual_seed(0))):
                    if i == self.bn_batches:
                        break
                    self.inner.train_loss(model, batch)
                model.eval()
        result = self.inner.evaluate(model)
        self.optimizer.train()
        model.train()
        return result


class OptimizerMethod(Schedule):
    """A schedule whose method is its optimizer, and the run's optimizer factory. `lr_free`: the grid's LR0 does
    not apply (the run passes 1.0, which the method ignores)."""

    lr_free = False
    task_wrapper: type[TaskProxy] | None = None
    task_optimizer, task_momentum = "adam", 0.0

    def for_task(self, optimizer: str, momentum: float) -> "OptimizerMethod":
        """The task's own optimizer (adam or sgd) and momentum, which some methods follow."""
        self.task_optimizer, self.task_momentum = optimizer, momentum
        return self

    def __call__(self, params, lr: float) -> torch.optim.Optimizer:
        return self.make_optimizer(params, self.task_optimizer, lr, self.task_momentum)

    def wrap_task(self, task: Task, optimizer: torch.optim.Optimizer) -> Task:
        return self.task_wrapper(task, optimizer) if self.task_wrapper else task

    def make_optimizer(self, params, task_optimizer: str, lr0: float, momentum: float) -> torch.optim.Optimizer:
        raise NotImplementedError


class SLSMethod(OptimizerMethod):
    lr_free, task_wrapper = True, TaskWithClosure

    def __init__(self, **sls_options):
        self.options = sls_options

    def make_optimizer(self, params, task_optimizer, lr0, momentum):
        return SLS(params, **self.options)


class ScheduleFree(OptimizerMethod):
    """Schedule-Free AdamW for Adam tasks, Schedule-Free SGD (same momentum) for SGD tasks, at the grid's LR0."""

    task_wrapper = TaskWithEvalMode

    def __init__(self, warmup_steps: int = 0, weight_decay: float = 0.0):
        self.warmup_steps, self.weight_decay = warmup_steps, weight_decay

    def make_optimizer(self, params, task_optimizer, lr0, momentum):
        import schedulefree

        if task_optimizer == "adam":
            opt = schedulefree.AdamWScheduleFree(params, lr=lr0, warmup_steps=self.warmup_steps,
                                                 weight_decay=self.weight_decay, eps=1e-7)
        else:
            opt = schedulefree.SGDScheduleFree(params, lr=lr0, momentum=momentum or 0.9,
                                               warmup_steps=self.warmup_steps, weight_decay=self.weight_decay)
        opt.train()
        return opt


class Prodigy(OptimizerMethod):
    """Prodigy (D-adaptation of Adam): lr 1.0 and its published defaults on every task."""

    lr_free = True

    def __init__(self, lr: float = 1.0, weight_decay: float = 0.0):
        self.lr, self.weight_decay = lr, weight_decay

    def make_optimizer(self, params, task_optimizer, lr0, momentum):
        import prodigyopt

        return prodigyopt.Prodigy(params, lr=self.lr, weight_decay=self.weight_decay)
