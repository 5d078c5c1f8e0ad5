"""Neural-network modules: layers, attention, the Transformer.

    import minigrad.nn as nn
"""
from .module import Module, Parameter, Sequential, ModuleList
from . import init
from .layers import (Neuron, Dense, Linear, MLP, ReLU, GELU, Tanh, Sigmoid, LayerNorm, Embedding,
                     Dropout)
from .activations import SiLU, LeakyReLU, ELU, Softplus, Identity
from .attention import MultiHeadAttention, KVCache, causal_mask, padding_mask
from .transformer import (PositionalEncoding, FeedForward, TransformerEncoderLayer, TransformerDecoderLayer,
                          Transformer)
from .conv import (Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool2d, BatchNorm2d,
                   Flatten)
