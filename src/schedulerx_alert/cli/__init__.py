"""Tools for the people who run schedulerx-alert; never imported by the function itself."""
