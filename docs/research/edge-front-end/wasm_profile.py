"""Code bytes per crate of a wasm with a name section (demangled prefixes)."""
import sys, re, collections
data = open(sys.argv[1], "rb").read()
def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1; r |= (x & 0x7f) << s; s += 7
        if x < 0x80: return r, i
i = 8; sections = []
while i < len(data):
    sid = data[i]; i += 1; size, i = leb(data, i); sections.append((sid, i, size)); i += size
imports = 0; sizes = []; names = {}
for sid, off, size in sections:
    if sid == 2:
        n, j = leb(data, off)
        for _ in range(n):
            l, j = leb(data, j); j += l; l, j = leb(data, j); j += l
            kind = data[j]; j += 1
            if kind == 0: _, j = leb(data, j); imports += 1
            elif kind == 1: j += 1; fl, j = leb(data, j); _, j = leb(data, j); j = leb(data, j)[1] if fl & 1 else j
            elif kind == 2: fl, j = leb(data, j); _, j = leb(data, j); j = leb(data, j)[1] if fl & 1 else j
            elif kind == 3: j += 2
    if sid == 10:
        n, j = leb(data, off)
        for _ in range(n):
            s, j = leb(data, j); sizes.append(s); j += s
    if sid == 0:
        l, j = leb(data, off); name = data[j:j+l].decode(); j += l
        if name == "name":
            end = off + size
            while j < end:
                sub = data[j]; j += 1; ss, j = leb(data, j); k = j
                if sub == 1:
                    n, k = leb(data, k)
                    for _ in range(n):
                        idx, k = leb(data, k); l, k = leb(data, k); names[idx] = data[k:k+l].decode("utf8", "replace"); k += l
                j += ss
by = collections.Counter()
for f, s in enumerate(sizes):
    n = names.get(f + imports, "?")
    m = re.search(r"(?:_ZN|_R[A-Za-z0-9]*?)?\d*([a-z_][a-z0-9_]+?)(?:\.\.|::|\d)", n)
    crate = n.split("::")[0].lstrip("<&*").split(" ")[0] if "::" in n else (m.group(1) if m else "?")
    crate = re.sub(r"\[[0-9a-f]+\]", "", crate)
    by[crate] += s
total = sum(sizes)
print(f"code bytes {total}")
for c, s in by.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 25):
    print(f"{s:>9} {100*s/total:5.1f}% {c}")
