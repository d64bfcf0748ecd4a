"""rnnlab: a reproducible DVC lab comparing RNN, LSTM, GRU and an MLP on sequence prediction."""

__version__ = "0.1.0"
