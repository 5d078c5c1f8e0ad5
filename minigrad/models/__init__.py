from .bert_tokenizer import BertTokenizer
