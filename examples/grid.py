"""A small example grid: print every combination of a full-factorial sweep."""

from execo_engine import sweep

if __name__ == "__main__":
    for combination in sweep({"size": [1, 10, 100], "algo": ["naive", "fast"]}):
        print(combination)
