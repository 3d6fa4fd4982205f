"""cdp_assets: a warehouse-native customer data platform built as Dagster software-defined assets."""
