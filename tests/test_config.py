import pytest

from kerasreg.config import TrainConfig
from kerasreg.errors import KerasregError


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "Received batch_size=0. Expected auto, full or a positive integer."),
        ({"epochs": -1}, "Received epochs=-1. Expected a positive integer."),
        ({"learning_rate": 0.0}, "Received learning_rate=0.0. Expected a positive number."),
        ({"l2": -1.0}, "Received l2=-1.0. Expected auto, or a number >= 0 (0 turns L2 off)."),
        ({"val_split": 1.0}, "Received val_split=1.0. Expected a fraction in [0, 1)."),
        ({"optimizer": "rmsprop"}, "Received optimizer='rmsprop'. Expected one of: adam, sgd."),
        ({"balance": "smote"}, "Received balance='smote'. Expected one of: none, undersample, class_weight."),
    ],
)
def test_bad_values_fail_at_construction(kwargs, message):
    with pytest.raises(KerasregError) as e:
        TrainConfig(**kwargs)
    assert str(e.value) == message


def test_learning_rate_resolves_per_optimizer_and_round_trips():
    config = TrainConfig(optimizer="sgd")
    assert config.to_dict()["learning_rate"] == 0.1
    assert TrainConfig.from_dict({**config.to_dict(), "future_option": 1}) == TrainConfig(
        optimizer="sgd", learning_rate=0.1
    )
