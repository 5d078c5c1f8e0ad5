"""BERT: the encoder and its sentence embeddings (model.py), Hugging Face checkpoint
names and loading (checkpoint.py), masked-language-model pre-training (masked_lm.py).

    from minigrad.models import BERT, BertTokenizer, sentence_embeddings
"""
from .checkpoint import (CHECKPOINT_MODULES, IGNORED_CHECKPOINT_NAMES, checkpoint_to_minigrad_name,
                         load_bert_checkpoint, minigrad_to_checkpoint_name)
from .masked_lm import BertForMaskedLM, BertMLMHead, mask_tokens
from .model import (BERT, BertConfig, BertEmbeddings, BertPooler, bert_encoder_layer, initialize_bert_weights,
                    mean_pooling, normalize, sentence_embeddings)
