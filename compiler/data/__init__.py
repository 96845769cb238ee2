"""`megaspec data prepare`: a text corpus -> token shards in the format of runtime/contract/shards.py."""
