fn main() {
    let cli = hookwire::cli::parse(std::env::args_os().collect());
    println!("{cli:?}");
}
