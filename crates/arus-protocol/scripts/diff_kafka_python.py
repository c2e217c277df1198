# Differential check against kafka-python (>= 3, JSON-spec based codec), not run in CI:
#   cargo run -p arus-protocol --features testing --example dump_random > /tmp/dump.txt
#   python3 -m venv /tmp/kpy && /tmp/kpy/bin/pip install kafka-python
#   /tmp/kpy/bin/python crates/arus-protocol/scripts/diff_kafka_python.py
# Decodes each random message we encoded with kafka-python, re-encodes it and compares bytes.
# (kafka-python decodes ApiVersionsResponse with a non-zero error as v0, so those differ.)
import sys, collections
from kafka.protocol.api_message import ApiMessage
import kafka.protocol.schemas as lj
import importlib.resources, os
res = os.path.join(os.path.dirname(lj.__file__), 'resources')
have = {f[:-5] for f in os.listdir(res) if f.endswith('.json')}
classes = {}
import pkgutil, importlib, kafka.protocol
FOUND = {}
for mi in pkgutil.walk_packages(kafka.protocol.__path__, 'kafka.protocol.'):
    try: mod = importlib.import_module(mi.name)
    except Exception: continue
    for k, c in vars(mod).items():
        if isinstance(c, type) and issubclass(c, ApiMessage) and c is not ApiMessage and getattr(c, '_json', None):
            FOUND[k] = c
print(len(FOUND), 'classes')
stats = collections.Counter(); fails = collections.defaultdict(list)
for line in open('/tmp/dump.txt'):
    name, v, hx = line.split(' ')
    v = int(v); data = bytes.fromhex(hx.strip())
    if name not in have: stats['nospec'] += 1; continue
    if name not in classes:
        classes[name] = FOUND.get(name)
    cls = classes[name]
    if cls is None: continue
    if v > cls.max_version: stats['newer'] += 1; continue
    try:
        m = cls.decode(data, version=v)
        m._header = None
        out = bytes(m.encode(version=v))
    except Exception as e:
        stats['err'] += 1; fails[name].append((v, 'exc ' + repr(e)[:100])); continue
    if out == data: stats['ok'] += 1
    else:
        stats['diff'] += 1; fails[name].append((v, 'diff'))
print(stats)
for k, l in sorted(fails.items()):
    print(k, sorted(set(l))[:6])
