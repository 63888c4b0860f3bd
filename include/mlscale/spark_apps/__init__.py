"""spark-submit applications, shipped inside the package so a normal install can submit them."""
