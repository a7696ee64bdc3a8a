import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.training import evaluate, fit, format_epoch, predict


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
    assert set(history) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
    assert all(len(values) == 5 for values in history.values())
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert format_epoch(history).startswith("epoch 5 |")


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


def test_bad_arguments_and_diverging_loss():
    model = nn.Linear(2, 2)
    loader = DataLoader(_separable_data(), batch_size=32)
    with pytest.raises(ValueError, match="positive integer"):
        fit(model, loader, epochs=0, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit(model, loader, epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            progress=False)
    with pytest.raises(ValueError, match="no samples"):
        evaluate(model, DataLoader(TensorDataset(torch.zeros(0, 2), torch.zeros(0).long())))


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


def test_helpers_default_to_the_device_chosen_by_setup(monkeypatch):
    from course_utils import config, training
    monkeypatch.setattr(config, "_current", config.CourseConfig("quick", torch.device("meta"), 0))
    with pytest.raises(ValueError, match="on cpu but this runs on meta"):
        training.resolve_device(nn.Linear(2, 2))
    assert training.resolve_device(nn.Linear(2, 2), "cpu") == torch.device("cpu")
