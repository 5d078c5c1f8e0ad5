"""ResNet: a small residual convolutional network for images (He et al., 2015).

A deep plain stack of convolutions is hard to train: the signal and its gradient
must pass through every layer. A residual block adds its input back,

    out = relu(F(x) + shortcut(x)),   F(x) = bn2(conv2(relu(bn1(conv1(x)))))

so each block only learns a correction F to the identity, and the gradient has a
direct path back through the additions.

    stem:    conv3x3(in_channels -> widths[0]) -> bn -> relu                 (N, w0, H, W)
    stage s: blocks_per_stage[s] BasicBlocks of width widths[s]; the first block of
             every stage after the first halves H and W (stride 2)
    head:    global average pooling -> (N, widths[-1]) -> Dense -> logits (N, num_classes)

The names follow torchvision's resnet (conv1, bn1, layer1.., fc; in a block conv1,
bn1, conv2, bn2, downsample), except that the stem has no max pooling and uses a
3x3 convolution, which suits small images (8x8 digits, 32x32 CIFAR).
"""
from .. import nn
from ..nn.conv import BatchNorm2d, Conv2d, GlobalAvgPool2d


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection:

        out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))

    conv1 has the block's stride; the shortcut is the identity when the shape is
    unchanged (stride 1, in_channels == out_channels), else a 1x1 convolution with
    that stride followed by batch norm (`downsample`, the projection shortcut).
    x (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BatchNorm2d(out_channels)
        self.conv2 = Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), BatchNorm2d(out_channels))
        else:
            self.downsample = None

    def residual(self, x):
        """F(x) = bn2(conv2(relu(bn1(conv1(x)))))."""
        return self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))

    def shortcut(self, x):
        """x itself, or its 1x1 projection when the block changes the shape."""
        return x if self.downsample is None else self.downsample(x)

    def forward(self, x):
        return (self.residual(x) + self.shortcut(x)).relu()


class ResNet(nn.Module):
    """ResNet(in_channels=3, num_classes=10, widths=(16, 32, 64), blocks_per_stage=(1, 1, 1))

    forward(x): x (N, in_channels, H, W) -> logits (N, num_classes).
    widths[s] is the number of channels of stage s and blocks_per_stage[s] its
    number of BasicBlocks; stage s > 0 starts with stride 2. Depth is
    2 * sum(blocks_per_stage) + 2 weighted layers (the CIFAR ResNet-20 is
    widths (16, 32, 64), blocks (3, 3, 3)).
    Initialisation: PyTorch's defaults for Conv2d and Dense, batch norm weight 1 and bias 0.
    """

    def __init__(self, in_channels=3, num_classes=10, widths=(16, 32, 64), blocks_per_stage=(1, 1, 1)):
        super().__init__()
        widths, blocks_per_stage = tuple(widths), tuple(blocks_per_stage)
        if len(widths) != len(blocks_per_stage) or not widths:
            raise ValueError(f"ResNet: widths {widths} and blocks_per_stage {blocks_per_stage} must be "
                             f"non-empty and of the same length (one entry per stage)")
        if min(blocks_per_stage) < 1 or min(widths) < 1:
            raise ValueError(f"ResNet: every stage needs at least one block and one channel, got widths "
                             f"{widths}, blocks_per_stage {blocks_per_stage}")
        self.in_channels, self.num_classes = in_channels, num_classes
        self.widths, self.blocks_per_stage = widths, blocks_per_stage
        self.conv1 = Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = BatchNorm2d(widths[0])
        channels = widths[0]
        self.stages = []
        for s, (width, count) in enumerate(zip(widths, blocks_per_stage)):
            blocks = []
            for b in range(count):
                blocks.append(BasicBlock(channels, width, stride=2 if s > 0 and b == 0 else 1))
                channels = width
            stage = nn.Sequential(*blocks)
            setattr(self, f"layer{s + 1}", stage)
            self.stages.append(stage)
        self.avgpool = GlobalAvgPool2d()
        self.fc = nn.Dense(channels, num_classes)

    def features(self, x):
        """The pooled features before the classifier: (N, widths[-1])."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResNet: expected images (N, {self.in_channels}, H, W), got shape {x.shape}")
        x = self.bn1(self.conv1(x)).relu()
        for stage in self.stages:
            x = stage(x)
        return self.avgpool(x)

    def forward(self, x):
        return self.fc(self.features(x))

    def extra_repr(self):
        return f"widths={self.widths}, blocks_per_stage={self.blocks_per_stage}"
