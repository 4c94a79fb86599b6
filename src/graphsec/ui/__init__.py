"""The secure-score dashboard's static files (``index.html``, ``app.js``, ``app.css``, the
vendored uPlot under ``vendor/``), served at ``/ui/`` by ``graphsec.api.ui``. No Python here."""
