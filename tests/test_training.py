import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.training import classification_step, evaluate, fit, format_epoch, predict


def _separable_data(count=200, seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(count, 2, generator=generator)
    targets = (inputs[:, 0] + inputs[:, 1] > 0).long()
    return TensorDataset(inputs, targets)


def _run(seed):
    torch.manual_seed(seed)
    model = nn.Linear(2, 2)
    data = _separable_data()
    loader = DataLoader(data, batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    history = fit(model, loader, DataLoader(data, batch_size=64), epochs=5,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.5), progress=False)
    return model, history


def test_fit_learns_and_records_history():
    _, history = _run(0)
    per_epoch = {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds",
                 "samples_per_second"}
    assert set(history) == per_epoch | {"step_loss"}
    assert all(len(history[key]) == 5 for key in per_epoch)
    assert len(history["step_loss"]) == 5 * 7  # 200 samples in batches of 32
    assert all(isinstance(value, float) for value in history["step_loss"])
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert all(rate > 0 for rate in history["samples_per_second"])
    assert format_epoch(history) == (f"epoch 5 | train_loss {history['train_loss'][-1]:.4f} | "
                                     f"train_accuracy {history['train_accuracy'][-1]:.4f} | "
                                     f"val_loss {history['val_loss'][-1]:.4f} | "
                                     f"val_accuracy {history['val_accuracy'][-1]:.4f}")


def test_same_seed_same_metrics():
    (_, first), (_, second) = _run(1), _run(1)
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert first[key] == second[key]


def test_evaluate_weights_by_samples_not_batches():
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    data = _separable_data(count=70)  # batches of 64 and 6
    metrics = evaluate(model, DataLoader(data, batch_size=64))
    inputs, targets = data.tensors
    with torch.no_grad():
        logits = model(inputs)
    assert metrics["loss"] == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-5)
    assert metrics["accuracy"] == pytest.approx((logits.argmax(1) == targets).float().mean().item())
    all_logits, all_targets = predict(model, DataLoader(data, batch_size=64))
    assert torch.allclose(all_logits, logits) and torch.equal(all_targets, targets)


def test_evaluation_restores_training_mode():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.train()
    evaluate(model, DataLoader(_separable_data(10), batch_size=4))
    assert model.training


@pytest.mark.parametrize("budget, message", [
    ({}, "exactly one of epochs= .* and steps="),
    ({"epochs": 2, "steps": 10}, "exactly one of epochs= .* and steps="),
    ({"epochs": 0}, "epochs must be a positive integer, got 0"),
    ({"epochs": 1.5}, "epochs must be a positive integer, got 1.5"),
    ({"steps": -3}, "steps must be a positive integer, got -3"),
    ({"epochs": 1, "scheduler_interval": "batch"}, 'scheduler_interval must be "epoch" or "step", got \'batch\''),
    ({"epochs": 1, "step": classification_step, "loss_fn": nn.CrossEntropyLoss()},
     "loss_fn is only used by the default classification step"),
])
def test_bad_arguments_say_what_to_pass(budget, message):
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=message):
        fit(model, DataLoader(_separable_data(), batch_size=32),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False, **budget)


def test_empty_loaders_and_a_step_without_a_scalar_loss_are_refused():
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    empty = DataLoader(TensorDataset(torch.zeros(0, 2), torch.zeros(0).long()))
    with pytest.raises(ValueError, match="no samples"):
        evaluate(model, empty)
    with pytest.raises(ValueError, match="yields no batches"):
        fit(model, empty, epochs=1, optimizer=optimizer, progress=False)
    with pytest.raises(ValueError, match="mean loss over the batch as a scalar tensor"):
        fit(model, DataLoader(_separable_data(), batch_size=32), epochs=1, optimizer=optimizer,
            step=lambda model, batch: F.cross_entropy(model(batch[0]), batch[1], reduction="none"),
            progress=False)


def test_a_loss_that_is_not_finite_names_the_epoch_and_the_step():
    model = nn.Linear(2, 2)
    loader = DataLoader(_separable_data(), batch_size=32)  # 7 batches per epoch
    calls = []

    def step(model, batch):  # finite for one epoch and two steps, then NaN
        calls.append(None)
        loss = F.cross_entropy(model(batch[0]), batch[1])
        return loss * float("nan") if len(calls) > 9 else loss

    with pytest.raises(FloatingPointError, match=r"nan at step 3 of epoch 2: lower the learning rate"):
        fit(model, loader, epochs=3, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            step=step, progress=False)


def test_any_mean_loss_module_works_for_training_and_evaluation():
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    data = _separable_data(70)
    history = fit(model, DataLoader(data, batch_size=32), DataLoader(data, batch_size=64),
                  epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
                  loss_fn=nn.CrossEntropyLoss(), progress=False)
    reference = evaluate(model, DataLoader(data, batch_size=70))
    assert history["val_loss"][-1] == pytest.approx(reference["loss"], rel=1e-5)


def test_helpers_refuse_a_model_that_is_not_on_the_lessons_device():
    data = DataLoader(_separable_data(), batch_size=32)
    with torch.device("meta"):
        elsewhere = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(elsewhere.parameters(), lr=0.1)
    for call in (lambda: fit(elsewhere, data, epochs=1, optimizer=optimizer, progress=False),
                 lambda: evaluate(elsewhere, data), lambda: predict(elsewhere, data)):
        with pytest.raises(ValueError, match=r"weight of the model is on meta but this runs on cpu.*"
                                             r"model.to\(cfg.device\)"):
            call()


def test_helpers_default_to_the_device_chosen_by_setup():
    from course_utils import config, training
    config.setup(seed=0, device="meta", verbose=False)
    try:
        with pytest.raises(ValueError, match="on cpu but this runs on meta"):
            training.resolve_device(nn.Linear(2, 2))
        assert training.resolve_device(nn.Linear(2, 2), "cpu") == torch.device("cpu")
    finally:
        config.setup(seed=0, device="cpu", verbose=False)


def _scored_step(model, batch):
    """A step with two metrics besides the loss."""
    inputs, targets = batch
    logits = model(inputs)
    loss = F.cross_entropy(logits, targets)
    return loss, {"accuracy": (logits.argmax(1) == targets).float().mean(),
                  "mean_logit": logits.mean()}


def test_a_custom_step_reports_its_metrics_in_training_and_evaluation():
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    data = _separable_data(70)
    history = fit(model, DataLoader(data, batch_size=32), DataLoader(data, batch_size=16),
                  epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
                  step=_scored_step, progress=False)
    for key in ("train_mean_logit", "val_mean_logit", "train_accuracy", "val_accuracy"):
        assert len(history[key]) == 2
    assert "val_mean_logit" in format_epoch(history)
    metrics = evaluate(model, DataLoader(data, batch_size=64), step=_scored_step)  # batches of 64 and 6
    inputs, targets = data.tensors
    with torch.no_grad():
        logits = model(inputs)
    assert set(metrics) == {"loss", "accuracy", "mean_logit"}
    assert metrics["mean_logit"] == pytest.approx(logits.mean().item(), rel=1e-5, abs=1e-6)
    assert metrics["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-5)


def test_a_step_returning_only_a_loss_and_batches_of_dicts():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    inputs = torch.randn(40, 2)
    batches = [{"inputs": inputs[i:i + 8], "targets": inputs[i:i + 8].sum(1, keepdim=True)}
               for i in range(0, 40, 8)]

    def regression_step(model, batch):
        return F.mse_loss(model(batch["inputs"]), batch["targets"])

    history = fit(model, batches, epochs=20, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                  step=regression_step, progress=False)
    assert set(history) == {"train_loss", "lr", "seconds", "samples_per_second", "step_loss"}
    assert history["train_loss"][-1] < 0.01 * history["train_loss"][0]
    assert evaluate(model, batches, step=regression_step)["loss"] == pytest.approx(
        F.mse_loss(model(inputs), inputs.sum(1, keepdim=True)).item(), rel=1e-4)


class _CountingScheduler(torch.optim.lr_scheduler.LambdaLR):
    """Keeps the learning rate; counts its calls."""

    def __init__(self, optimizer):
        self.calls = -1  # the constructor makes one call of its own
        super().__init__(optimizer, lambda _: 1.0)

    def step(self, *args):
        self.calls += 1
        super().step(*args)


def _counted_fit(interval="epoch", **budget):
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = _CountingScheduler(optimizer)
    steps = []
    optimizer.register_step_post_hook(lambda *_: steps.append(None))
    history = fit(model, DataLoader(_separable_data(), batch_size=32), optimizer=optimizer,
                  scheduler=scheduler, scheduler_interval=interval, progress=False, **budget)
    return history, len(steps), scheduler.calls


def test_steps_stop_after_exactly_that_many_optimiser_steps_across_passes():
    history, optimiser_steps, scheduler_calls = _counted_fit("step", steps=17)  # 7 batches a pass
    assert optimiser_steps == scheduler_calls == len(history["step_loss"]) == 17
    assert len(history["train_loss"]) == 3  # 7 + 7 + a partial pass of 3
    history, optimiser_steps, _ = _counted_fit("step", steps=14)
    assert optimiser_steps == 14 and len(history["train_loss"]) == 2


def test_the_scheduler_steps_once_per_batch_or_once_per_epoch():
    _, optimiser_steps, scheduler_calls = _counted_fit("step", epochs=3)
    assert optimiser_steps == scheduler_calls == 21
    _, optimiser_steps, scheduler_calls = _counted_fit("epoch", epochs=3)
    assert (optimiser_steps, scheduler_calls) == (21, 3)


def test_the_history_records_the_learning_rate_at_the_start_of_each_epoch():
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, DataLoader(_separable_data(), batch_size=32), epochs=3,
                  optimizer=optimizer, scheduler=scheduler, progress=False)
    assert history["lr"] == [1.0, 0.5, 0.25]


def test_clipping_bounds_the_gradient_norm_the_optimiser_sees():
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    norms = []
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # the gradients stay huge
    optimizer.register_step_pre_hook(lambda *_: norms.append(
        torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])).item()))

    def huge_step(model, batch):
        return 1e6 * F.cross_entropy(model(batch[0]), batch[1])

    loader = DataLoader(_separable_data(), batch_size=32)
    fit(model, loader, epochs=1, optimizer=optimizer, step=huge_step, progress=False)
    assert min(norms) > 100  # without clipping
    norms.clear()
    fit(model, loader, epochs=1, optimizer=optimizer, step=huge_step, clip_grad_norm=0.5,
        progress=False)
    assert len(norms) == 7 and max(norms) == pytest.approx(0.5, rel=1e-4)


def test_the_batch_reaches_the_step_on_the_device_and_is_weighted_by_its_first_tensor():
    seen = []

    def step(model, batch):
        inputs, (targets, weights) = batch
        seen.append((inputs.device, len(inputs)))
        return (F.cross_entropy(model(inputs), targets, reduction="none") * weights).mean()

    data = _separable_data(70)
    batches = [(inputs, [targets, torch.ones(len(targets))])
               for inputs, targets in DataLoader(data, batch_size=64)]  # 64 and 6 samples
    model = nn.Linear(2, 2)
    loss = evaluate(model, batches, step=step)["loss"]
    assert seen == [(torch.device("cpu"), 64), (torch.device("cpu"), 6)]
    assert loss == pytest.approx(evaluate(model, DataLoader(data, batch_size=70))["loss"], rel=1e-5)


def test_pretrain_reports_its_throughput_without_the_time_of_its_evaluations():
    """lesson 07's loop: losses read once at the end, the rate of the training steps alone."""
    import time

    from course_utils.ssl_protocol import pretrain

    data = torch.randn(64, 4)
    model = torch.nn.Linear(4, 4)
    pauses = []

    def evaluate(step, network):
        pauses.append(step)
        time.sleep(0.3)

    history = pretrain(model, lambda indices: model(data[indices]).square().mean(), len(data),
                       steps=20, batch_size=8, lr=1e-2, every=10, on_step=evaluate)
    assert pauses == [10, 20]
    assert len(history["step_loss"]) == 20 and all(isinstance(x, float) for x in history["step_loss"])
    assert history["seconds"] < 0.3  # the two pauses of 0.3 s are left out
    assert history["items_per_second"] == pytest.approx(160 / history["seconds"])


def test_a_trained_or_loaded_model_says_how_fast_it_trained(tmp_path, monkeypatch, capsys):
    from course_utils import cache

    assert cache.throughput({"samples_per_second": [100.0, 300.0]}) == 200.0
    assert cache.throughput({"history": {"items_per_second": 50}}) == 50.0
    assert cache.throughput({"results": {"items_per_second": 70, "scores": {}}}) == 70.0  # lesson 07
    assert cache.throughput({"step_loss": [1.0]}) is None
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("COURSE_RETRAIN", raising=False)
    for _ in range(2):
        cache.train_once("rate", recipe={}, build=lambda: torch.nn.Linear(2, 2),
                         train=lambda model: {"samples_per_second": [1234.0]})
    printed = capsys.readouterr().out
    assert "trained in" in printed and "loaded from" in printed
    assert printed.count("at 1,234 samples/s") == 2
