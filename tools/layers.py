#!/usr/bin/env python3
"""layers.py: which source files of a library call which, and the cycles.

Reads the object files a build made (nm: the symbols each defines and
each needs), links every undefined symbol to the file that defines it, and
prints the strongly connected components of that graph with more than one
file: calls that go round in a circle, which a layered design has none of.
Static inline code in headers is not seen (it is compiled into its caller);
that is the one blind spot, and why the check is on calls, not includes.

usage: tools/layers.py OBJDIR... [--dot] [--allow N] [--order A,B,...]
  OBJDIR   e.g. build/CMakeFiles/shmbus.dir/src (several: one graph; a
           file is named by its directory's last two parts and its name)
  --dot    print the graph as Graphviz instead
  --allow  exit 0 while the largest cycle has at most N files (default 0)
  --order  the source folders (src/A, src/B, ...) bottom up: a call from
           a folder to one after it is an error, so a layer calls only
           the layers below it
"""
import os
import subprocess
import sys


def objects(d):
    for root, _, files in os.walk(d):
        for f in sorted(files):
            if f.endswith('.o'):
                yield os.path.join(root, f)


def symbols(path):
    out = subprocess.run(['nm', '--defined-only', '-g', path], check=True,
                         capture_output=True, text=True).stdout
    defined = {l.split()[-1] for l in out.splitlines() if l.strip()}
    out = subprocess.run(['nm', '-u', path], check=True,
                         capture_output=True, text=True).stdout
    needed = {l.split()[-1] for l in out.splitlines() if l.strip()}
    return defined, needed


def sccs(nodes, edges):
    """Tarjan's algorithm, iterative."""
    index, low, on, stack, out, n = {}, {}, set(), [], [], [0]

    def strong(v):
        work = [(v, iter(sorted(edges[v])))]
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            u, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = n[0]
                    n[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on:
                    low[u] = min(low[u], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[u])
                if low[u] == index[u]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == u:
                            break
                    out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return out


def main(argv):
    if len(argv) < 2 or argv[1] in ('-h', '--help'):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    dot, allow, dirs, order = '--dot' in argv, 0, [], []
    args = iter(argv[1:])
    for a in args:
        if a == '--allow':
            allow = int(next(args))
        elif a == '--order':
            order = next(args).split(',')
        elif a != '--dot':
            dirs.append(a)
    files = {}
    for d in dirs:
        for o in objects(d):
            name = os.path.relpath(o, d)[:-2]  # foo.c.o -> foo.c
            if len(dirs) > 1:  # shmbus_journal.dir/src/journal.c
                name = os.path.join(*d.rstrip('/').split('/')[-2:], name)
            files[name] = symbols(o)
        if not files:
            print(f'layers.py: no object files under {d}', file=sys.stderr)
            return 2
    owner = {}
    for f, (defined, _) in files.items():
        for s in defined:
            owner[s] = f
    edges = {f: set() for f in files}
    for f, (_, needed) in files.items():
        for s in needed:
            g = owner.get(s)
            if g and g != f:
                edges[f].add(g)
    if dot:
        print('digraph calls {')
        for f in sorted(edges):
            for g in sorted(edges[f]):
                print(f'  "{f}" -> "{g}";')
        print('}')
        return 0
    cycles = [c for c in sccs(files, edges) if len(c) > 1]
    largest = max((len(c) for c in cycles), default=0)
    print(f'{len(files)} files, {sum(len(e) for e in edges.values())} '
          f'calling edges, {len(cycles)} cycles, largest {largest} files')
    for c in sorted(cycles, key=len, reverse=True):
        print(f'cycle of {len(c)}: ' + ' '.join(c))
    upward = [(f, g) for f in sorted(edges) for g in sorted(edges[f])
              if order and rank(f, order) < rank(g, order)]
    for f, g in upward:
        print(f'upward call: {f} -> {g}')
    if order:
        print(f'{len(upward)} calls up the layers {" < ".join(order)}')
    return 0 if largest <= allow and not upward else 1


def rank(name, order):
    """The layer of a file: its folder under src/, by its place in order
    (a folder not in it: an error, so that no file escapes the check)."""
    parts = name.split('/')
    folder = parts[parts.index('src') + 1] if 'src' in parts else parts[0]
    if folder not in order:
        sys.exit(f'layers.py: {name} is in no layer of --order')
    return order.index(folder)


if __name__ == '__main__':
    sys.exit(main(sys.argv))
