"""Writes wine.csv from scikit-learn's bundled copy of the UCI wine recognition data
(178 wines, 13 chemical measurements, 3 cultivars; no download). Run from this folder:
    python make_data.py
"""

from pathlib import Path

from sklearn.datasets import load_wine

wine = load_wine(as_frame=True)
frame = wine.frame.rename(columns={"od280/od315_of_diluted_wines": "od280_od315"})
frame["cultivar"] = [f"cultivar_{int(t) + 1}" for t in frame.pop("target")]
frame.insert(0, "wine_id", [f"w{i:03d}" for i in range(len(frame))])
frame.to_csv(Path(__file__).with_name("wine.csv"), index=False, float_format="%.4g")
