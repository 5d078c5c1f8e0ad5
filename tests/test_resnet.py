"""models.ResNet and BasicBlock: the residual formula from the block's own submodules,
shapes, configurability, and a short real training run on handwritten digits."""
import time

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import models, optim
from minigrad.data import DataLoader
from minigrad.datasets import load_digits


def images(shape, seed=0):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


@pytest.mark.parametrize("train", [True, False])
def test_identity_block_output_is_relu_of_residual_plus_input(device, train):
    mg.manual_seed(0)
    block = models.BasicBlock(4, 4)
    assert block.downsample is None                      # same shape: identity shortcut
    block.train(train)
    x = images((3, 4, 6, 6))
    y = block(x).numpy()
    # F(x) spelled out with the block's submodules, then relu(F(x) + x) in numpy
    f = block.bn2(block.conv2(block.bn1(block.conv1(x)).relu())).numpy()
    np.testing.assert_allclose(y, np.maximum(f + x.numpy(), 0.0), rtol=1e-6, atol=1e-6)
    assert y.min() == 0.0 and (y > 0).any()               # the relu is really there


def test_projection_block_output_is_relu_of_residual_plus_projected_input(device):
    mg.manual_seed(0)
    block = models.BasicBlock(3, 8, stride=2)
    conv, bn = block.downsample[0], block.downsample[1]
    assert conv.kernel_size == (1, 1) and conv.stride == (2, 2) and conv.bias is None
    assert conv.weight.shape == (8, 3, 1, 1) and bn.num_features == 8
    block.eval()
    x = images((2, 3, 7, 7))
    y = block(x)
    assert y.shape == (2, 8, 4, 4)                        # ceil(7 / 2)
    f = block.bn2(block.conv2(block.bn1(block.conv1(x)).relu())).numpy()
    shortcut = bn(conv(x)).numpy()
    # the 1x1 stride-2 projection picks every other pixel and mixes channels
    np.testing.assert_allclose(conv(x).numpy(),
                               np.einsum("oc,nchw->nohw", conv.weight.numpy()[:, :, 0, 0], x.numpy()[:, :, ::2, ::2]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.numpy(), np.maximum(f + shortcut, 0.0), rtol=1e-6, atol=1e-6)


def test_resnet_shapes_stages_and_names(device):
    mg.manual_seed(0)
    model = models.ResNet(in_channels=1, num_classes=10, widths=(4, 8, 16), blocks_per_stage=(2, 1, 1))
    x = images((5, 1, 8, 8))
    assert model(x).shape == (5, 10)
    assert model.features(x).shape == (5, 16)
    assert [len(stage) for stage in model.stages] == [2, 1, 1]
    assert model.layer1[0].downsample is None and model.layer1[1].downsample is None
    assert model.layer2[0].downsample is not None and model.layer3[0].conv1.stride == (2, 2)
    names = set(model.state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer1.1.conv2.weight", "layer2.0.downsample.0.weight",
            "layer3.0.bn2.num_batches_tracked", "fc.weight", "fc.bias"} <= names
    # stem 3x3 conv + bn, then per block two 3x3 convs + two bns, projections where the shape changes
    def conv_bn(c_in, c_out, k):
        return c_in * c_out * k * k + 2 * c_out
    expected = (conv_bn(1, 4, 3) + 2 * 2 * conv_bn(4, 4, 3)
                + conv_bn(4, 8, 3) + conv_bn(8, 8, 3) + conv_bn(4, 8, 1)
                + conv_bn(8, 16, 3) + conv_bn(16, 16, 3) + conv_bn(8, 16, 1) + 16 * 10 + 10)
    assert model.num_parameters() == expected


def test_resnet_rejects_bad_configurations_and_inputs():
    with pytest.raises(ValueError, match="same length"):
        models.ResNet(widths=(8, 16), blocks_per_stage=(1,))
    with pytest.raises(ValueError, match=r"ResNet: expected images \(N, 1, H, W\), got shape \(2, 3, 8, 8\)"):
        models.ResNet(in_channels=1)(mg.zeros(2, 3, 8, 8))


def test_resnet_backpropagates_to_every_parameter_on_the_device(device):
    mg.manual_seed(0)
    model = models.ResNet(in_channels=3, num_classes=4, widths=(4, 8), blocks_per_stage=(1, 1))
    logits = model(images((6, 3, 8, 8)))
    assert logits.device == device
    F.cross_entropy(logits, mg.tensor(np.array([0, 1, 2, 3, 0, 1]))).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.shape == param.shape, name
        assert np.abs(param.grad.numpy()).sum() > 0, name


def test_resnet_state_dict_round_trip_gives_the_same_predictions(tmp_path):
    mg.manual_seed(0)
    model = models.ResNet(in_channels=1, num_classes=3, widths=(4, 8), blocks_per_stage=(1, 1))
    model(images((8, 1, 6, 6)))                           # move the running statistics
    model.eval()
    path = str(tmp_path / "resnet.safetensors")
    mg.save(model.state_dict(), path)
    mg.manual_seed(1)
    other = models.ResNet(in_channels=1, num_classes=3, widths=(4, 8), blocks_per_stage=(1, 1)).eval()
    other.load_state_dict(mg.load(path))
    x = images((4, 1, 6, 6), seed=1)
    np.testing.assert_array_equal(other(x).numpy(), model(x).numpy())


def test_short_resnet_training_on_digits_beats_chance_by_far():
    """CI's version of benchmarks/train_digits.py: 2 epochs of a narrow ResNet."""
    mg.manual_seed(0)
    X_train, y_train, X_test, y_test = load_digits(test_fraction=0.2, seed=0)
    assert X_train.shape[1:] == (1, 8, 8) and len(X_train) + len(X_test) == 1797
    assert set(np.unique(y_test)) == set(range(10))
    model = models.ResNet(in_channels=1, num_classes=10, widths=(8, 16, 32), blocks_per_stage=(1, 1, 1))
    opt = optim.Adam(model.parameters(), lr=3e-3)
    start = time.perf_counter()
    for xb, yb in DataLoader((X_train, y_train), batch_size=64, shuffle=True, seed=0):
        for _ in range(2):                                # two steps per batch: one epoch of data
            loss = F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
    elapsed = time.perf_counter() - start
    model.eval()
    with mg.no_grad():
        predictions = model(mg.tensor(X_test)).numpy().argmax(axis=1)
    accuracy = (predictions == y_test).mean()
    assert accuracy > 0.6, f"test accuracy {accuracy:.3f} after {elapsed:.1f} s"
    assert elapsed < 30
