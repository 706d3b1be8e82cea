#!/usr/bin/env bash
# MovieLens 100K as your own impression log, end to end with the documented commands:
# convert -> phoenix import -> train -> eval -> train-retrieval -> rank one user -> score every user.
# Usage: bench/movielens_end_to_end.sh [ML100K_DIR] [OUT_DIR]   (about 9 minutes on 2 cores)
set -euo pipefail
ML=${1:-../shared/data/ml-100k}
OUT=${2:-runs/movielens}
mkdir -p "$OUT"
start=$(date +%s)

# 1. u.data (user, item, rating, unix time; tab-separated) -> one impression per rating, with the
#    action mapping ../shared/README.md suggests. This is the only MovieLens-specific step.
awk -F'\t' 'BEGIN { print "user_id,post_id,time,click,favorite,share,not_interested" }
            { print $1 "," $2 "," $4 ",1," ($3 >= 4) "," ($3 == 5) "," ($3 <= 2) }' "$ML/u.data" > "$OUT/log.csv"

# 2. Validate, order by time and split (last 10% of ratings valid, then 10% test).
phoenix import "$OUT/log.csv" --out "$OUT/dataset"

# 3-4. Train the ranker (heads from the data, early stopping on validation) and evaluate on test.
phoenix train --config configs/movielens.toml --workdir "$OUT/workdir" --data "$OUT/dataset"
phoenix eval --workdir "$OUT/workdir"

# 5. The two-tower retrieval model on the same log, indexing its movies.
phoenix train-retrieval --config configs/movielens.toml --workdir "$OUT/workdir"

# 6. One user's feed: history from the log, candidates from retrieval, through the full pipeline.
phoenix rank --workdir "$OUT/workdir" --user 1 > "$OUT/feed_user_1.json"
python -c "import json,sys; f=json.load(open(sys.argv[1])); print('user 1 top 5:', [(i['post_id'], round(i['final_score'], 3)) for i in f['items'][:5]])" "$OUT/feed_user_1.json"

# 7. Every user with test impressions: their history before the test period, their test movies scored.
phoenix history --workdir "$OUT/workdir" --out "$OUT/requests.parquet"
phoenix score --workdir "$OUT/workdir" --input "$OUT/requests.parquet" --output "$OUT/scores"

echo "movielens end to end: $(( $(date +%s) - start )) s"
