

m4echox/sandbox/results/mini-m1/sandbox/results/t1