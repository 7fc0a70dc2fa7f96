"""cpu.py ROOTPID -> prints 'comm:ticks' summed for the root and its descendants (by comm: node/python3/nginx)."""
import os, sys, collections
root = int(sys.argv[1]); kids = collections.defaultdict(list); info = {}
for p in os.listdir('/proc'):
    if not p.isdigit(): continue
    try:
        s = open('/proc/%s/stat' % p).read()
    except OSError: continue
    comm = s[s.index('(') + 1:s.rindex(')')]; f = s[s.rindex(')') + 2:].split()
    kids[int(f[1])].append(int(p)); info[int(p)] = (comm, int(f[11]) + int(f[12]))
tot = collections.Counter(); stack = [root]
while stack:
    p = stack.pop()
    if p in info: tot[info[p][0]] += info[p][1]
    stack.extend(kids.get(p, []))
print(" ".join("%s:%d" % kv for kv in sorted(tot.items())))
