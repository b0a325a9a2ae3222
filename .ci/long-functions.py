#!/usr/bin/env python3
"""The longest functions of src/ (tests left out), by lines from `fn` to its closing brace.

Run from the repository root: python3 .ci/long-functions.py [COUNT]
"""
import os
import re
import sys

res=[]
for root,_,files in os.walk('src'):
    for f in files:
        if not f.endswith('.rs'): continue
        p=os.path.join(root,f); lines=open(p).read().split('\n')
        in_tests=False
        i=0
        while i<len(lines):
            l=lines[i]
            if re.match(r'\s*mod tests\s*\{',l) or '#[cfg(test)]' in l and i+1<len(lines) and 'mod ' in lines[i+1]: break
            m=re.match(r'^(\s*)(pub(\([^)]*\))? )?(const )?(async )?(unsafe )?fn (\w+)',l)
            if m:
                ind=m.group(1); name=m.group(7)
                j=i
                while j<len(lines) and not (lines[j].startswith(ind+'}') and len(lines[j].rstrip())==len(ind)+1):
                    if lines[j].rstrip().endswith(';') and j==i: break
                    j+=1
                if j<len(lines) and lines[j].startswith(ind+'}'):
                    res.append((j-i+1,p+'::'+name))
            i+=1
res.sort(reverse=True)
for n,name in res[:int(sys.argv[1]) if len(sys.argv)>1 else 12]: print(n,name)
