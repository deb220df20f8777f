"""Darooghe Live: `python -m dashboard.ui` (`streamlit run app.py`, warmed). Page config and navigation only.

`shell.draw()` draws what every page shares (settings check, sidebar filters,
kiosk style); it runs here, in the entrypoint, because Streamlit keeps the
state of entrypoint widgets across page switches. Pages live in app_pages/.
"""

import streamlit as st

from dashboard import ui
from dashboard.ui import shell

ui.boot()
st.set_page_config(page_title="Darooghe Live", page_icon=":material/monitoring:", layout="wide")
#: The pages by URL name (the file name's stem), as a wall's playlist names them.
PAGES = {
    "overview": st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    "live_feed": st.Page("app_pages/live_feed.py", title="Live feed", icon=":material/view_stream:"),
    "validation": st.Page("app_pages/validation.py", title="Validation", icon=":material/rule:"),
    "health": st.Page("app_pages/health.py", title="Health", icon=":material/monitor_heart:"),
    "merchants": st.Page("app_pages/merchants.py", title="Merchants", icon=":material/storefront:"),
    "fraud": st.Page("app_pages/fraud.py", title="Fraud", icon=":material/gpp_maybe:"),
    "commissions": st.Page("app_pages/commissions.py", title="Commissions", icon=":material/percent:"),
    "customers": st.Page("app_pages/customers.py", title="Customers", icon=":material/groups:"),
    "volume": st.Page("app_pages/volume.py", title="Volume", icon=":material/bar_chart:"),
}
SECTIONS = {
    "Live": ["overview", "live_feed", "validation", "health"],
    "Insights": ["merchants", "fraud", "commissions", "customers", "volume"],
}
nav = st.navigation({section: [PAGES[name] for name in names] for section, names in SECTIONS.items()})
shell.draw(PAGES, nav)
nav.run()
