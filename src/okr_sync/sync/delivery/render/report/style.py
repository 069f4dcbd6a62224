"""The report's inline stylesheet: system fonts only, readable at 400 px, prints on A4."""

from __future__ import annotations

#: Band colours from the lowest band to the highest; each has at least 4.5:1
#: contrast on white, so it may colour text as well as bars.
BAND_COLOURS = ("#b91c1c", "#b45309", "#15803d")
NEUTRAL = "#475569"

CSS = """
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:72rem;padding:1rem;color:#0f172a;background:#fff}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.25rem;margin:1.6rem 0 .6rem;
border-bottom:2px solid #e2e8f0}h3{font-size:1.05rem;margin:.4rem 0}
h4{font-size:1rem;margin:.3rem 0}
a{color:#1d4ed8}.meta{color:#334155;margin:.2rem 0}
svg.map{width:100%;height:auto;display:block;margin:.5rem 0}
.bands{list-style:none;padding:0;margin:0}
.band{border-left:.5rem solid #475569;background:#f8fafc;margin:.6rem 0;padding:.5rem .8rem}
.band header{display:flex;flex-wrap:wrap;gap:.5rem;align-items:baseline}
.tiles,.chips{list-style:none;padding:0;margin:.4rem 0;display:flex;flex-wrap:wrap;gap:.5rem}
.tile{border:1px solid #cbd5e1;border-radius:.4rem;background:#fff;padding:.4rem .6rem;
min-width:12rem;flex:1 1 12rem}
.tile .v{font-size:1.2rem;font-weight:600}
.chip{border:1px solid #cbd5e1;border-radius:1rem;background:#fff;padding:.1rem .6rem}
.badge{display:inline-block;border-radius:.3rem;padding:0 .4rem;color:#fff;font-weight:600;
font-size:.85rem}
.muted{color:#334155}
.tree,.tree ul{list-style:none;padding-left:0;margin:0}
.tree ul{padding-left:1.2rem;border-left:2px solid #e2e8f0}
.objective{border:1px solid #cbd5e1;border-radius:.5rem;padding:.6rem .8rem;margin:.6rem 0}
.kr{border-top:1px solid #e2e8f0;padding:.5rem 0;display:grid;
grid-template-columns:minmax(0,1fr) 20rem;gap:.2rem 1rem}
.kr>*{min-width:0}.kr .chart{grid-column:2;grid-row:1/span 3}
.kr details,.kr .notes{grid-column:1/-1}
.bar{height:.7rem;background:#e2e8f0;border-radius:.35rem;overflow:hidden;max-width:20rem}
.bar>span{display:block;height:100%}
dl.facts{display:flex;flex-wrap:wrap;gap:.1rem 1.2rem;margin:.3rem 0}
dl.facts div{display:flex;gap:.3rem}dl.facts dt{color:#334155}dl.facts dd{margin:0}
svg.burnup{width:100%;max-width:20rem;height:auto}
table{border-collapse:collapse;width:100%;margin:.4rem 0;font-size:.9rem}
th,td{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #e2e8f0;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
details>summary{cursor:pointer;font-weight:600}
.stale{color:#b45309;font-weight:600}
@media (max-width:40rem){body{font-size:14px;padding:.5rem}
.kr{grid-template-columns:minmax(0,1fr)}.kr .chart{grid-column:1;grid-row:auto}
.tile{min-width:100%}table{display:block;overflow-x:auto}}
@media print{@page{size:A4;margin:12mm}body{max-width:none;padding:0;font-size:11pt}
a{color:#0f172a;text-decoration:none}.objective,.band,.kr{break-inside:avoid}
details>*{display:block}}
""".strip()
