pub mod shopify;
