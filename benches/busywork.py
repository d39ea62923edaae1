"""The unit of real work the benchmark children repeat: `k` multiply-adds of Python."""


def work(k: int) -> int:
    s = 0
    for i in range(k):
        s += i * i
    return s
