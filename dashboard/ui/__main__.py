"""`python -m dashboard.ui [options of streamlit run]`: the dashboard server (`dashboard.ui.serve`)."""

from dashboard.ui.serve import main

main()
