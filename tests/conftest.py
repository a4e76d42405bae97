import os
# Tests never touch the network: the offline dataset is the default everywhere in the suite.
os.environ.setdefault('WSCOURSE_DATASET', 'digits')
import matplotlib
matplotlib.use('Agg')
