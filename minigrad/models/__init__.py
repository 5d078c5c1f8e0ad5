from .bert_tokenizer import BertTokenizer
from .bert import (BERT, BertConfig, BertForMaskedLM, load_bert_checkpoint, mean_pooling, normalize,
                   sentence_embeddings, mask_tokens)
from .gpt import GPT
from .resnet import ResNet, BasicBlock
