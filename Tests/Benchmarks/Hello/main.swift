// The floor of a Swift program's start (see ExecutorBenchmark): print and exit.
print("hello")
