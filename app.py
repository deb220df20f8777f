"""Darooghe Live: `streamlit run app.py`. Page config and navigation only.

`shell.draw()` draws what every page shares (settings check, sidebar filters,
kiosk style); it runs here, in the entrypoint, because Streamlit keeps the
state of entrypoint widgets across page switches. Pages live in app_pages/.
"""

import streamlit as st

from dashboard import ui
from dashboard.ui import shell

ui.boot()
st.set_page_config(page_title="Darooghe Live", page_icon=":material/monitoring:", layout="wide")
nav = st.navigation(
    {
        "Live": [
            st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
            st.Page("app_pages/live_feed.py", title="Live feed", icon=":material/view_stream:"),
            st.Page("app_pages/validation.py", title="Validation", icon=":material/rule:"),
            st.Page("app_pages/health.py", title="Health", icon=":material/monitor_heart:"),
        ],
        "Insights": [
            st.Page("app_pages/merchants.py", title="Merchants", icon=":material/storefront:"),
            st.Page("app_pages/fraud.py", title="Fraud", icon=":material/gpp_maybe:"),
            st.Page("app_pages/commissions.py", title="Commissions", icon=":material/percent:"),
            st.Page("app_pages/customers.py", title="Customers", icon=":material/groups:"),
            st.Page("app_pages/volume.py", title="Volume", icon=":material/bar_chart:"),
        ],
    }
)
shell.draw()
nav.run()
